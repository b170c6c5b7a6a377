"""The street simulation: a pure, deterministic generator of legal, time-ordered commands."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dispatch.bootstrap import bootstrap
from dispatch.domain import commands as c
from dispatch.domain.clock import SimulatedClock
from dispatch.domain.reference import Reference, load_reference
from dispatch.service.simulation import SimulationTally, simulate
from dispatch.service.simulation.runner import run_embedded, ticks
from dispatch.service.simulation.summary import agreement, figures

TZ = ZoneInfo("Asia/Shanghai")
START = datetime(2025, 9, 22, tzinfo=TZ)  # a Monday; the National Day holiday is Oct 1-8


@pytest.fixture(scope="module")
def reference() -> Reference:
    return load_reference(None)


def dumped(reference: Reference, seed: int, days: int = 3, per_day: float = 40) -> list[dict[str, object]]:
    return [cmd.model_dump(mode="json") for _, cmd in simulate(reference, "xinqi", days, per_day, seed, START)]


def test_the_same_seed_gives_the_same_commands_and_another_seed_another_story(reference: Reference) -> None:
    assert dumped(reference, 7) == dumped(reference, 7)
    assert dumped(reference, 7) != dumped(reference, 8)


def test_commands_come_in_business_time_order_within_the_period(reference: Reference) -> None:
    stream = list(simulate(reference, "xinqi", 5, 40, 1, START))
    times = [at for at, _ in stream]
    assert times == sorted(times)
    assert START <= times[0] and times[-1] < START + timedelta(days=5)
    assert all(at == cmd.occurred_at for at, cmd in stream)


def test_each_ticket_starts_with_its_report_and_goes_forward(reference: Reference) -> None:
    by_ticket: dict[str, list[c.Report]] = defaultdict(list)
    reports = 0
    for _, cmd in simulate(reference, "xinqi", 5, 40, 2, START):
        if isinstance(cmd, c.Report):
            reports += 1
            continue
        by_ticket[str(cmd.ticket_id)].append(cmd)
    assert len(by_ticket) <= reports
    for steps in by_ticket.values():
        assert [s.occurred_at for s in steps] == sorted(s.occurred_at for s in steps)
        kinds = [type(s).__name__ for s in steps]
        assert kinds[0] in ("Accept", "FirstContact")
        if "Handle" in kinds:  # the lead department reports in before it handles
            assert kinds.index("Acknowledge") < kinds.index("Handle")


def test_the_tally_counts_exactly_what_was_emitted(reference: Reference) -> None:
    tally = SimulationTally()
    stream = [cmd for _, cmd in simulate(reference, "xinqi", 7, 40, 1, START, tally=tally)]
    kinds = Counter(type(cmd).__name__ for cmd in stream)
    t = tally.as_dict()
    assert t["commands"] == len(stream)
    assert t["reported"] == kinds["Report"]
    assert t["rejections"] == kinds["Reject"] > 0
    assert t["closed"] == kinds["Close"] + kinds["FirstContact"]
    assert t["first_contact_closures"] == kinds["FirstContact"] > 0
    assert t["dispatches"] == kinds["Dispatch"] == t["dispatched"] + t["redispatches"]
    assert t["evaluations"] == kinds["Evaluate"] >= t["evaluated"]
    assert sum(t["satisfaction"].values()) == t["evaluated"]


def test_the_mix_follows_caojings_counts_and_the_hotline_share(reference: Reference) -> None:
    tally = SimulationTally()
    for _ in simulate(reference, "xinqi", 60, 200, 5, START, tally=tally):
        pass
    cats, reported = tally.by_category, tally.reported
    grid_total = sum(cats[k] for k in ("city_appearance", "road_traffic", "public_facilities",
                                       "facility_management", "sanitation_environment"))
    assert cats["city_appearance"] / grid_total == pytest.approx(19 / 35, abs=0.03)
    assert cats["road_traffic"] / grid_total == pytest.approx(8 / 35, abs=0.03)
    hotline_total = sum(cats[k] for k in ("construction_transport", "public_utilities", "economy"))
    assert cats["construction_transport"] / hotline_total == pytest.approx(4 / 6, abs=0.05)
    assert tally.by_channel["hotline"] == hotline_total
    assert reported / 60 == pytest.approx(200, rel=0.05)


def test_rest_days_are_quieter_and_patrols_walk_by_day(reference: Reference) -> None:
    per_day: Counter[date] = Counter()
    patrol_hours: Counter[int] = Counter()
    for at, cmd in simulate(reference, "xinqi", 21, 200, 4, START):
        if isinstance(cmd, c.Report):
            per_day[at.date()] += 1
            if cmd.channel == "patrol":
                patrol_hours[at.hour] += 1
    holiday = [per_day[date(2025, 10, d)] for d in range(1, 9)]  # 国庆 + 中秋
    working = [per_day[date(2025, 9, d)] for d in (22, 23, 24, 25, 26, 28, 29, 30)]  # incl. the 调休 Sunday
    assert sum(holiday) / len(holiday) < 0.85 * sum(working) / len(working)
    assert sum(patrol_hours[h] for h in range(0, 7)) == 0


def test_other_streets_report_from_their_own_grids(reference: Reference) -> None:
    grids = {cmd.grid for _, cmd in simulate(reference, "漕泾镇", 3, 30, 1, START) if isinstance(cmd, c.Report)}
    assert grids and all(g.startswith("cj-") for g in grids)


def test_watchdog_ticks_cover_the_period_and_end_inside_it() -> None:
    instants = list(ticks(START, START + timedelta(days=1)))
    assert len(instants) == 96
    assert instants[0] == START + timedelta(minutes=15) and instants[-1] < START + timedelta(days=1)


def test_the_engine_accepts_every_command_and_its_dashboard_agrees_with_the_tally(
        reference: Reference, tmp_path: Path) -> None:
    runtime = bootstrap(str(tmp_path / "sim.db"), clock=SimulatedClock(START))
    end = START + timedelta(days=3)
    tally = SimulationTally()
    try:
        report = run_embedded(runtime, simulate(runtime.reference, "xinqi", 3, 40, 9, START, tally=tally),
                              start=START, end=end)
        result = figures(runtime.engine, runtime.reference, "xinqi", START, end)
    finally:
        runtime.close()
    assert report.commands == tally.commands and not report.refused
    last_simulated_instant = end - timedelta(microseconds=1)
    assert runtime.clock.now() == last_simulated_instant
    assert all(row["agree"] for row in agreement(tally, report.escalations, result)), agreement(
        tally, report.escalations, result)


def test_start_defaults_to_local_midnight_of_the_default_day(reference: Reference) -> None:
    first = next(iter(simulate(reference, "xinqi", 1, 40, 1)))[0]
    assert first.date() == date(2025, 9, 22) and first >= datetime.combine(date(2025, 9, 22), time(), TZ)
