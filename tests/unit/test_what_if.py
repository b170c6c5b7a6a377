"""``dispatch what-if``: history judged under other rules, checked against hand computation and
against the slow way (a second engine fed the same commands under the other reference file).

The hand scenario (one street, working time 08:30-12:00 / 13:30-17:30 = 450 minutes a day; normal
tickets: report-in 60, handling 450, feedback 900 working minutes; the centre's accept 10 and
dispatch 20), in 2026, read as of Fri 10-16 12:00:

  T1..T5  reported Mon 10-12 08:40, accepted 08:45, dispatched 09:00 (report-in due 10:00)
          T1 reports in 09:30 (30 min), T2 10:30 (90), T3 10:59 (119), T4 11:30 (150), T5 never.
  T6      reported Tue 10-13 16:00, accepted 16:05, dispatched 16:30: report-in due 17:30 (in at 17:00);
          handling due Wed 10-14 16:30 (60 on Tuesday + 390 on Wednesday); handled Thu 10-15 10:00.

Actual report-in: on time T1, T6; late T2, T3, T4; overdue T5 → 2 of 6 judged on time.
With report-in doubled (120): T2 (90) and T3 (119) fall between the two deadlines and turn on
time → 4 of 6, and exactly their two report-in deadlines change verdict.
With Wed 10-14 a holiday: T6's handling deadline moves one working day (450 working minutes) to
Thu 10-15 16:30, so its handling at Thu 10:00 turns from late to on time.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from dispatch.bootstrap import Runtime, bootstrap
from dispatch.domain.clock import SimulatedClock
from dispatch.domain.errors import ReferenceDataError
from dispatch.service.queries import Window
from dispatch.service.simulation import simulate
from dispatch.service.simulation.runner import run_embedded
from dispatch.service.whatif import differing, export_rules, what_if
from tests.unit.test_sla_scenario import REFERENCE, Story, cli_json

AS_OF = datetime.fromisoformat("2026-10-16T12:00:00+08:00")
PERIOD = Window(None, None, AS_OF)


def _write(path: Path, body: dict[str, Any]) -> str:
    path.write_text(yaml.safe_dump(body, allow_unicode=True), encoding="utf-8")
    return str(path)


def play(runtime: Runtime) -> dict[str, str]:
    s = Story(runtime)
    for name in ("T1", "T2", "T3", "T4", "T5"):
        s.intake(name, "10-12 08:40", "ca-g01", "sanitation", "patrol", "10-12 09:00")
    for name, at in (("T1", "09:30"), ("T2", "10:30"), ("T3", "10:59"), ("T4", "11:30")):
        s.do(name, "acknowledge", f"10-12 {at}", department="huanwei")
    s.intake("T6", "10-13 16:00", "ca-g02", "sanitation", "patrol", "10-13 16:30")
    s.do("T6", "acknowledge", "10-13 17:00", department="huanwei")
    s.do("T6", "handle", "10-15 10:00", department="huanwei")
    return s.ids


@pytest.fixture
def story(tmp_path: Path) -> Iterator[tuple[Runtime, dict[str, str], Path]]:
    runtime = bootstrap(str(tmp_path / "w.db"), reference_file=_write(tmp_path / "ref.yaml", REFERENCE))
    try:
        yield runtime, play(runtime), tmp_path
    finally:
        runtime.close()


def _rules(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(REFERENCE)
    for rule in body["sla"]:
        rule.update(changes)
    return body


def _figure(result: dict[str, Any], unit: str, figure: str) -> dict[str, Any]:
    [row] = [r for r in result["rows"] if r["unit"] == unit and r["figure"] == figure]
    return row


def test_the_same_rules_change_no_figure_and_no_verdict(story: tuple[Runtime, dict[str, str], Path]) -> None:
    runtime, _, tmp = story
    for by in ("department", "category", "community", "street"):
        result = what_if(runtime, _write(tmp / "same.yaml", REFERENCE), period=PERIOD, by=by)
        assert result["rows"] and differing(result["rows"]) == [], by
        assert all(r["delta"] in (0, None) for r in result["rows"])
        assert result["changed"] == 0
    board = what_if(runtime, str(tmp / "same.yaml"), period=PERIOD, dashboard=True, street="s1")
    assert board["rows"] and differing(board["rows"]) == [] and board["changed"] == 0


def test_report_in_doubled_turns_exactly_the_calls_between_the_two_deadlines(
        story: tuple[Runtime, dict[str, str], Path]) -> None:
    runtime, ids, tmp = story
    result = what_if(runtime, _write(tmp / "doubled.yaml", _rules(ack_minutes=120)), period=PERIOD, by="department")
    rate = _figure(result, "huanwei", "ack_on_time_rate")
    assert (rate["actual"], rate["what_if"]) == (pytest.approx(2 / 6), pytest.approx(4 / 6))
    assert rate["delta"] == pytest.approx(2 / 6)
    on_time = _figure(result, "huanwei", "ack_on_time")
    assert (on_time["actual"], on_time["what_if"], on_time["delta"]) == (2, 4, 2)
    assert {(c["ticket_id"], c["deadline"]) for c in result["changed_tickets"]} == {
        (ids["T2"], "ack:1:huanwei"), (ids["T3"], "ack:1:huanwei")}
    assert result["changed"] == 2
    for c in result["changed_tickets"]:
        assert (c["verdict"], c["verdict_what_if"]) == ("late", "on_time")
        assert c["due"] == datetime.fromisoformat("2026-10-12T10:00:00+08:00")
        assert c["due_what_if"] == datetime.fromisoformat("2026-10-12T11:00:00+08:00")  # 120 working minutes
    # MTTA is what happened: the same minutes under either deadline
    assert _figure(result, "huanwei", "mtta_minutes_mean")["delta"] == 0


def test_a_holiday_added_moves_a_working_time_deadline_across_it_by_its_working_minutes(
        story: tuple[Runtime, dict[str, str], Path]) -> None:
    runtime, ids, tmp = story
    rules = {"calendar_overrides": {"2026-10-14": "holiday"}}  # a rules-only file laid over the rules in force
    result = what_if(runtime, _write(tmp / "holiday.yaml", rules), period=PERIOD, by="department")
    [handle] = [c for c in result["changed_tickets"] if c["deadline"].startswith("handle:")]
    assert handle["ticket_id"] == ids["T6"]
    assert handle["due"] == datetime.fromisoformat("2026-10-14T16:30:00+08:00")
    assert handle["due_what_if"] == datetime.fromisoformat("2026-10-15T16:30:00+08:00")
    assert (handle["verdict"], handle["verdict_what_if"]) == ("late", "on_time")
    assert _figure(result, "huanwei", "handle_on_time")["delta"] == 1


def test_tickets_still_waiting_at_the_instant_are_judged_by_their_status_then(tmp_path: Path) -> None:
    """The centre's waiting tickets count as late only while their status at the instant is still
    waiting (figures.md); a what-if copies each ticket's status at the instant, not its latest.

    W1 reported Thu 10-15 09:00, never accepted; W2 reported then, accepted 09:05, never
    dispatched; W3 reported Fri 10-16 08:45, accepted 13:00 — after the instant (12:00), so
    waiting at it. Accept 10 and dispatch 20 working minutes: W1 and W3 accepted late (waiting),
    all three dispatched late (waiting). With accept 240 and dispatch 480 working minutes W3's
    deadlines (Fri 14:15, Mon 10-19 09:15) are still ahead at the instant; W1's and W2's
    (Thu 14:30; Fri 09:30) have passed."""
    waiting_at_the_instant(str(tmp_path / "w.db"), tmp_path)


def waiting_at_the_instant(url: str, tmp_path: Path) -> None:
    """The story of ``test_tickets_still_waiting_at_the_instant_are_judged_by_their_status_then``
    on the read model at ``url`` (a fresh one)."""
    runtime = bootstrap(url, reference_file=_write(tmp_path / "ref.yaml", REFERENCE))
    try:
        s = Story(runtime)
        for name in ("W1", "W2"):
            s.report(name, "10-15 09:00", "ca-g01", "sanitation", "patrol")
        s.do("W2", "accept", "10-15 09:05")
        s.report("W3", "10-16 08:45", "ca-g01", "sanitation", "patrol")
        s.do("W3", "accept", "10-16 13:00")
        figures = ("accept_on_time", "accept_late", "dispatch_on_time", "dispatch_late")
        same = what_if(runtime, str(tmp_path / "ref.yaml"), period=PERIOD, by="street")
        assert [(_figure(same, "s1", f)["actual"], _figure(same, "s1", f)["what_if"]) for f in figures] == [
            (1, 1), (2, 2), (0, 0), (3, 3)]
        slower = what_if(runtime, _write(tmp_path / "slower.yaml", _rules(accept_minutes=240, dispatch_minutes=480)),
                         period=PERIOD, by="street")
        assert [_figure(slower, "s1", f)["what_if"] for f in figures] == [1, 1, 0, 2]
    finally:
        runtime.close()


def test_a_file_that_changes_places_or_departments_is_refused_with_the_differences(
        story: tuple[Runtime, dict[str, str], Path]) -> None:
    runtime, _, tmp = story
    other = copy.deepcopy(REFERENCE)
    other["departments"][0]["name"] = "城市管理"
    other["districts"][0]["streets"][0]["communities"].pop()
    with pytest.raises(ReferenceDataError) as refused:
        what_if(runtime, _write(tmp / "other.yaml", other), period=PERIOD, by="department")
    text = str(refused.value)
    assert "departments[chengguan].name" in text and "communities[cb] missing" in text
    with pytest.raises(ReferenceDataError, match="holds only sla"):
        what_if(runtime, _write(tmp / "extra.yaml", {"departments": []}), period=PERIOD, by="department")


def test_routing_is_shown_as_who_would_have_led(story: tuple[Runtime, dict[str, str], Path]) -> None:
    runtime, _, tmp = story
    rules = {"categories": [{"id": "sanitation", "lead_department": "chengguan", "cooperating": ["huanwei"]}]}
    result = what_if(runtime, _write(tmp / "routing.yaml", rules), period=PERIOD, by="department")
    assert result["routing"] == [{"category": "sanitation", "name": "环卫环保", "lead": "huanwei", "cooperating": [],
                                  "lead_what_if": "chengguan", "cooperating_what_if": ["huanwei"], "dispatches": 6,
                                  "led_by": {"huanwei": 6}}]
    assert differing(result["rows"]) == [] and result["changed"] == 0  # what happened stays what happened


def test_the_cli_exports_the_rules_and_answers_in_json(story: tuple[Runtime, dict[str, str], Path]) -> None:
    runtime, _, tmp = story
    url = str(runtime.db.url.database)
    exported = yaml.safe_load(cli_json_text(url, "reference", "export", "--sections", "sla,calendar"))
    assert exported == {k: v for k, v in export_rules(runtime.reference, ["sla", "calendar"]).items()}
    for rule in exported["sla"]:
        rule["ack_minutes"] *= 2
    path = _write(tmp / "edited.yaml", exported)
    data = cli_json(url, "what-if", "--reference", path, "--by", "department", "--as-of", AS_OF.isoformat(),
                    "--changed", "--out", str(tmp / "changed.csv"))
    assert data["changed"] == 2 and len(data["changed_tickets"]) == 2
    assert {"unit", "figure", "actual", "what_if", "delta"} <= set(data["rows"][0])
    lines = (tmp / "changed.csv").read_text(encoding="utf-8-sig").splitlines()
    assert lines[0].startswith("case_no,ticket_id,deadline") and len(lines) == 3


def test_the_cli_table_gives_a_rates_difference_in_percentage_points(story: tuple[Runtime, dict[str, str], Path]
                                                                       ) -> None:
    runtime, _, tmp = story
    url = str(runtime.db.url.database)
    exported = yaml.safe_load(cli_json_text(url, "reference", "export", "--sections", "sla"))
    for rule in exported["sla"]:
        rule["ack_minutes"] *= 2
    text = cli_json_text(url, "what-if", "--reference", _write(tmp / "doubled.yaml", exported), "--by", "department",
                         "--as-of", AS_OF.isoformat())
    # report-in on time 2 of 6 → 4 of 6 (the hand scenario): 33.3% → 66.7%, 33.3 points up
    line = next(line for line in text.splitlines() if "ack_on_time_rate" in line)
    assert line.split()[-4:] == ["33.3%", "66.7%", "+33.3", "pp"], line
    assert next(line for line in text.splitlines() if " ack_on_time " in line).split()[-3:] == ["2", "4", "+2"]


def test_the_cli_lists_the_changed_deadlines_by_whole_case_number_in_local_time(
        story: tuple[Runtime, dict[str, str], Path]) -> None:
    from click.testing import CliRunner

    from dispatch.cli import main

    runtime, _, tmp = story
    url = str(runtime.db.url.database)
    exported = yaml.safe_load(cli_json_text(url, "reference", "export", "--sections", "sla"))
    for rule in exported["sla"]:
        rule["ack_minutes"] *= 2
    result = CliRunner().invoke(main, ["--db", url, "what-if", "--reference", _write(tmp / "doubled.yaml", exported),
                                       "--by", "department", "--as-of", AS_OF.isoformat(), "--changed"],
                                env={"COLUMNS": "160"}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = cli_json(url, "what-if", "--reference", str(tmp / "doubled.yaml"), "--by", "department",
                    "--as-of", AS_OF.isoformat(), "--changed")
    listed = [line.split() for line in result.output.splitlines() if line.split()[:1] and any(
        line.split()[0] == r["case_no"] for r in data["changed_tickets"])]
    # T2 (in at 10:30) and T3 (10:59): report-in due 10:00 local (60 working minutes from 09:00), 11:00 doubled
    due = ["10-12", "10:00", "→", "11:00"]
    assert sorted(row[4:] for row in listed) == [[*due, "10-12", "10:30", "late", "→", "on_time"],
                                                 [*due, "10-12", "10:59", "late", "→", "on_time"]]
    assert all(row[1:4] == ["ack", "#1", "huanwei"] for row in listed) and len(listed) == 2


def cli_json_text(url: str, *args: str) -> str:
    from click.testing import CliRunner

    from dispatch.cli import main

    result = CliRunner().invoke(main, ["--db", url, *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


# -- the slow way: the same commands through an engine started under the other file ---------------------

SIM_START = datetime(2025, 9, 22, tzinfo=timezone(timedelta(hours=8)))
SIM_DAYS = 28


def _simulated(url: str, reference_file: str | None, commands: list[Any]) -> Runtime:
    runtime = bootstrap(url, clock=SimulatedClock(SIM_START), reference_file=reference_file)
    run_embedded(runtime, iter(commands), start=SIM_START, end=SIM_START + timedelta(days=SIM_DAYS), watchdog=False)
    return runtime


def test_what_if_equals_a_replay_of_the_same_commands_under_the_other_file(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from dispatch.domain.reference import load_reference

    sample = load_reference(None, boundaries=False)
    commands = list(simulate(sample, "xinqi", SIM_DAYS, 25, 3, SIM_START))
    body = sample.to_dict()
    for rule in body["sla"]:  # report-in doubled, handling a third shorter, the centre's dispatch halved
        rule["ack_minutes"] *= 2
        rule["handle_minutes"] = max(rule["ack_minutes"], rule["handle_minutes"] * 2 // 3)
        rule["feedback_minutes"] = max(rule["handle_minutes"], rule["feedback_minutes"])
        rule["dispatch_minutes"] = max(rule.get("accept_minutes", 30), rule.get("dispatch_minutes", 60) // 2)
    body["calendar_overrides"] = {**body.get("calendar_overrides", {}), "2025-10-09": "holiday",
                                  "2025-10-18": "workday"}
    other_file = _write(tmp_path / "other.yaml", body)
    actual = _simulated(str(tmp_path / "actual.db"), None, commands)
    slow = _simulated(str(tmp_path / "slow.db"), other_file, commands)
    try:
        as_of = SIM_START + timedelta(days=SIM_DAYS)
        questions = [(None, None, as_of), (SIM_START + timedelta(days=7), SIM_START + timedelta(days=21), as_of),
                     (SIM_START + timedelta(days=3), SIM_START + timedelta(days=10), SIM_START + timedelta(days=12))]
        moved = 0
        for start, end, instant in questions:
            period = Window(start, end, instant)
            for by, per in (("department", None), ("community", "week"), ("category", None)):
                result = what_if(actual, other_file, period=period, by=by, per=per)
                from dispatch.service.queries import sla

                expected = sla(slow, by=by, per=per, period=period)
                got = {(r["unit"], r.get("period"), r["figure"]): r["what_if"] for r in result["rows"]}
                for row in expected["rows"]:
                    for figure, value in row.items():
                        key = (row[by], row.get("period"), figure)
                        if key in got:
                            assert got[key] == pytest.approx(value, abs=1e-9) if isinstance(value, float) \
                                else got[key] == value, (by, per, start, key)
                assert {k for k in got} >= {(row[by], row.get("period"), f) for row in expected["rows"]
                                            for f, v in row.items() if isinstance(v, (int, float))
                                            and not isinstance(v, bool)}
                moved += len(differing(result["rows"]))
                if by == "department":  # the deadlines whose verdict changed: as judged by hand, actual vs slow
                    from dispatch.service.whatif import _changed

                    expected_changed = _changed(_verdicts_by_hand(actual.engine, period),
                                                _verdicts_by_hand(slow.engine, period))
                    assert result["changed_tickets"] == sorted(
                        expected_changed, key=lambda r: (r["case_no"] or "", r["ticket_id"], r["deadline"]))
                    assert result["changed"] > 0 or start is not None
            board = what_if(actual, other_file, period=period, dashboard=True, street="xinqi")
            from dispatch.service.queries import dashboard

            slow_board = dashboard(slow, street="xinqi", period=period)
            assert {r["figure"]: r["what_if"] for r in board["rows"] if r["unit"] == "xinqi"} == pytest.approx(
                {k: v for k, v in _numbers(slow_board).items()})
        assert moved > 50  # the other rules moved many figures: the comparison above is not of equals
        assert _deadlines_of(_replayed(actual, other_file)) == _deadlines_of(slow.engine)
        # in two forked processes, each rewriting, projecting and judging its share: the same answer
        import dispatch.service.whatif

        period = Window(None, None, as_of)
        alone = [what_if(actual, other_file, period=period, by="community", per="week"),
                 what_if(actual, other_file, period=period, dashboard=True, street="xinqi")]
        monkeypatch.setattr(dispatch.service.whatif, "_CHUNK", 100)  # ~700 tickets: two shares of a few chunks
        shared = [what_if(actual, other_file, period=period, by="community", per="week", workers=2),
                  what_if(actual, other_file, period=period, dashboard=True, street="xinqi", workers=2)]
        assert shared == alone and alone[0]["changed"] > 20 and alone[0]["tickets"] > 400
    finally:
        actual.close()
        slow.close()


def _verdicts_by_hand(engine: Any, period: Window) -> dict[tuple[str, str], dict[str, Any]]:
    """Every deadline's verdict as docs/figures.md defines it, row by row in Python (the
    database judges them in ``verdicts``): report-in and handling of the calls dispatched in the
    period, accept and dispatch of the tickets reported in it, closing of those first dispatched
    in it, each as of the instant."""
    from sqlalchemy import select

    from dispatch.projections import tables as t

    as_of, start, end = period.as_of, period.start, period.end

    def inside(at: Any) -> bool:
        return at is not None and at <= as_of and (start is None or at >= start) and (end is None or at < end)

    def judge(due: Any, done: Any) -> str | None:
        if due is None:
            return None
        if done is not None and done <= as_of:
            return "on_time" if done <= due else "late"
        return "overdue" if due < as_of else "pending"

    def by(at: Any) -> Any:
        return at if at is not None and at <= as_of else None

    out: dict[tuple[str, str], dict[str, Any]] = {}
    case_nos: dict[str, Any] = {}

    def put(tid: str, deadline: str, department: str, due: Any, done: Any, verdict: str | None) -> None:
        if verdict is not None:
            out[(tid, deadline)] = {"ticket_id": tid, "case_no": case_nos.get(tid), "deadline": deadline,
                                    "department": department, "due": due, "done": done, "verdict": verdict}

    with engine.connect() as conn:
        for r in conn.execute(select(t.tickets)):
            if r.reported_at > as_of:
                continue
            case_nos[r.ticket_id] = r.case_no
            ended, closed = r.ended_at is not None and r.ended_at <= as_of, by(r.closed_at)
            first_contact = closed is not None and (r.closed_via or "").startswith("first_contact")
            accepted = r.accepted_at if r.accepted_at is not None else (closed if first_contact else None)
            dispatched = by(r.first_dispatched_at)
            if inside(r.reported_at):
                put(r.ticket_id, "accept", "", r.accept_due, accepted, judge(r.accept_due, accepted))
                put(r.ticket_id, "dispatch", "", r.dispatch_due, dispatched,
                    "not_owed" if dispatched is None and ended else judge(r.dispatch_due, dispatched))
            if inside(dispatched):
                put(r.ticket_id, "close", "", r.feedback_due, closed,
                    "not_owed" if ended and closed is None else judge(r.feedback_due, closed))
        for r in conn.execute(select(t.calls)):
            if not inside(r.dispatched_at):
                continue
            answered = by(r.answered_at)
            closed_out = r.closed_out_at is not None and r.closed_out_at <= as_of and r.closed_out_at <= r.ack_due
            put(r.ticket_id, f"ack:{r.call_id}", r.department, r.ack_due, answered,
                "not_owed" if closed_out else judge(r.ack_due, answered))
            if r.role == "lead" and not (answered is not None and r.answer == "rejected"):
                put(r.ticket_id, f"handle:{r.call_id}", r.department, r.handle_due, by(r.handled_at),
                    judge(r.handle_due, by(r.handled_at)))
    return out


def _replayed(runtime: Runtime, path: str) -> Any:
    """The what-if's scratch read model of every ticket."""
    from dispatch.projections import tables as t
    from dispatch.service.whatif import replayed, rules_from

    with runtime.engine.connect() as conn:
        ids = sorted(conn.execute(t.tickets.select().with_only_columns(t.tickets.c.ticket_id)).scalars())
    return replayed(runtime, ids, rules_from(runtime.reference, path))


def _deadlines_of(engine: Any) -> dict[str, Any]:
    """Every deadline (and working-minute duration) the read model holds, by ticket and call."""
    from sqlalchemy import select

    from dispatch.projections import tables as t

    tk, c = t.tickets.c, t.calls.c
    with engine.connect() as conn:
        tickets = {r[0]: tuple(r[1:]) for r in conn.execute(select(tk.ticket_id, tk.accept_due, tk.dispatch_due,
                                                                   tk.feedback_due, tk.provisional))}
        calls = {(r[0], r[1]): tuple(r[2:]) for r in conn.execute(select(
            c.ticket_id, c.call_id, c.ack_due, c.handle_due, c.feedback_due, c.time_basis, c.escalate_every_minutes,
            c.ack_minutes, c.handle_minutes, c.calendar))}
    return {"tickets": tickets, "calls": calls}


def _numbers(board: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in board.items():
        if key in ("communities", "grids", "ranking", "unranked"):
            continue
        if isinstance(value, dict):
            out.update(_numbers(value, f"{prefix}{key}."))
        elif value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
            out[f"{prefix}{key}"] = value
    return out


def test_json_of_a_result_is_plain(story: tuple[Runtime, dict[str, str], Path]) -> None:
    runtime, _, tmp = story
    result = what_if(runtime, _write(tmp / "d.yaml", _rules(ack_minutes=120)), period=PERIOD, by="street")
    from dispatch.projections.records import jsonable

    assert json.loads(json.dumps(result, default=jsonable))["changed"] == 2


def play_holds_and_extensions(runtime: Runtime) -> None:
    """The hand scenario, and tickets whose deadlines a hold and an extension moved."""
    s = Story(runtime)
    for name in ("T1", "T2", "T3"):
        s.intake(name, "10-12 08:40", "ca-g01", "sanitation", "patrol", "10-12 09:00")
    s.do("T1", "acknowledge", "10-12 10:30", department="huanwei")
    s.do("T1", "hold", "10-12 11:00", reason="waiting for the owner")  # T1: handling held a day
    s.do("T1", "resume", "10-13 11:00", note="owner back")
    s.do("T1", "handle", "10-14 09:00", department="huanwei")
    s.do("T2", "acknowledge", "10-12 09:20", department="huanwei")  # T2: asks 300 more minutes, granted
    s.do("T2", "request_extension", "10-12 15:00", department="huanwei", minutes=300, reason="parts")
    s.do("T2", "decide_extension", "10-12 15:30", approve=True, reason="ok")
    s.do("T2", "handle", "10-13 15:00", department="huanwei")
    s.do("T3", "hold", "10-12 09:10", reason="before anyone reported in")  # T3: held before its report-in
    s.do("T3", "resume", "10-12 14:00", note="go")
    s.do("T3", "acknowledge", "10-12 14:40", department="huanwei")


def test_holds_and_extensions_move_as_the_engine_moves_them(tmp_path: Path) -> None:
    from dispatch.service.queries import sla

    other = _rules(ack_minutes=90, handle_minutes=470, feedback_minutes=960)
    other["calendar_overrides"] = {"2026-10-13": "holiday"}
    other_file = _write(tmp_path / "other.yaml", other)
    actual = bootstrap(str(tmp_path / "a.db"), reference_file=_write(tmp_path / "ref.yaml", REFERENCE))
    slow = bootstrap(str(tmp_path / "s.db"), reference_file=other_file)
    try:
        play_holds_and_extensions(actual)
        play_holds_and_extensions(slow)
        result = what_if(actual, other_file, period=PERIOD, by="department")
        expected = sla(slow, by="department", period=PERIOD)["rows"]
        got = {(r["unit"], r["figure"]): r["what_if"] for r in result["rows"]}
        assert expected and all(got[(row["department"], k)] == v for row in expected for k, v in row.items()
                                if (row["department"], k) in got)
        assert differing(result["rows"])  # the rules moved figures
        assert _deadlines_of(_replayed(actual, other_file)) == _deadlines_of(slow.engine)
        assert _deadlines_of(_replayed(actual, other_file)) != _deadlines_of(actual.engine)
    finally:
        actual.close()
        slow.close()


def _tables_of(engine: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every read-model table the figures read, sorted, as the database stores them
    (SQLite compares times as their text: the same instant in another form would judge otherwise)."""
    with engine.connect() as conn:
        return {name: sorted((tuple(r) for r in conn.exec_driver_sql(f"SELECT * FROM {name}")),
                             key=lambda row: tuple((v is None, str(v)) for v in row))
                for name in ("tickets", "calls", "ticket_states", "evaluations", "escalations", "reopens")}


def _both_ways(runtime: Runtime, path: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    import dispatch.service.whatif

    monkeypatch.setattr(dispatch.service.whatif, "ROWS_WHEN_UNMOVED", False)
    events = _tables_of(_replayed(runtime, path))
    monkeypatch.setattr(dispatch.service.whatif, "ROWS_WHEN_UNMOVED", True)
    return events, _tables_of(_replayed(runtime, path))


def test_unmoved_tickets_copied_from_their_rows_equal_their_events_projected(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A month of a street's simulated work (no deadline ever moved), and the hand scenario beside
    its holds and extensions: the scratch read model made from the rows of the unmoved tickets is
    the one their rewritten events make, row for row, in every table."""
    from sqlalchemy import select

    from dispatch.domain.reference import load_reference
    from dispatch.projections import tables as t
    from dispatch.service.queries import for_reading

    sample = load_reference(None, boundaries=False)
    body = sample.to_dict()
    for rule in body["sla"]:
        rule["ack_minutes"] *= 2
        rule["time_basis"] = "working" if rule["time_basis"] == "calendar" else "calendar"
    body["calendar_overrides"] = {**body.get("calendar_overrides", {}), "2025-10-09": "holiday"}
    month = _simulated(str(tmp_path / "month.db"), None, list(simulate(sample, "xinqi", SIM_DAYS, 25, 3, SIM_START)))
    holds = bootstrap(str(tmp_path / "holds.db"), reference_file=_write(tmp_path / "ref.yaml", REFERENCE))
    try:
        play_holds_and_extensions(holds)  # three tickets whose deadlines moved
        plain = Story(holds)  # and three whose did not
        plain.n = 1_000  # command ids of its own
        for name in ("P1", "P2", "P3"):
            plain.intake(name, "10-12 08:40", "ca-g01", "sanitation", "patrol", "10-12 09:00")
        plain.do("P1", "acknowledge", "10-12 10:30", department="huanwei")
        plain.do("P1", "handle", "10-14 09:00", department="huanwei")  # across the holiday of the other rules
        plain.do("P2", "acknowledge", "10-12 09:20", department="huanwei")
        for runtime, path in ((month, _write(tmp_path / "month.yaml", body)),
                              (holds, _write(tmp_path / "holds.yaml", {**_rules(ack_minutes=90),
                                                                     "calendar_overrides": {"2026-10-13": "holiday"}}))):
            for_reading(runtime)
            with runtime.engine.connect() as conn:
                moves = dict(conn.execute(select(t.tickets.c.case_no, t.tickets.c.deadline_moves)).all())
            by_events, by_rows = _both_ways(runtime, path, monkeypatch)
            assert by_rows == by_events
            assert by_rows != _tables_of(runtime.engine)  # the rules moved deadlines: not a copy of the live rows
            assert sum(1 for n in moves.values() if n == 0) >= (300 if runtime is month else 3)
        assert sorted(moves.values()) == [0] * 3 + [1] * 3  # resumed once (T1, T3), extended once (T2)
    finally:
        month.close()
        holds.close()


def test_a_dispatch_the_other_rules_cannot_count_keeps_what_it_had() -> None:
    """At the calendar's edge (``OverflowError``) the rewrite keeps a Dispatched event as it was,
    as ``handlers`` set no deadline there either: copied from its rows, the dispatch keeps its
    deadlines and basis, and the ticket its provisional flag (the report's new one does not
    replace a dispatch's); the minutes are counted again all the same."""
    from types import SimpleNamespace

    from dispatch.projections import tables as t
    from dispatch.service.whatif import recompute

    class AtTheEdge:
        def centre_deadlines(self, category: str, priority: str, at: datetime) -> Any:
            return SimpleNamespace(accept_due=at + timedelta(minutes=10), dispatch_due=at + timedelta(minutes=20),
                                   time_basis="calendar", provisional=False)

        def deadlines(self, category: str, priority: str, at: datetime) -> Any:
            raise OverflowError("date value out of range")

    def row(table: Any, **values: Any) -> list[Any]:
        return [values.get(c.name) for c in table.columns]

    ticket = row(t.tickets, category="sanitation", priority="normal", reported_at="2026-10-12 00:40:00.000000",
                 accept_due="2026-10-12 00:50:00.000000", dispatch_due="2026-10-12 01:00:00.000000",
                 centre_basis="working", dispatch_no=1, provisional=True, time_basis="working",
                 feedback_due="2026-10-14 01:00:00.000000")
    call = row(t.calls, dispatch_no=1, role="lead", dispatched_at="2026-10-12 01:00:00.000000",
               ack_due="2026-10-12 02:00:00.000000", handle_due="2026-10-13 01:00:00.000000",
               feedback_due="2026-10-14 01:00:00.000000", time_basis="working", escalate_every_minutes=60,
               calendar="fingerprint", answered_at="2026-10-12 01:30:00.000000")
    counted: list[tuple[Any, ...]] = []

    def minutes(basis: str | None, start: Any, end: Any) -> float | None:
        counted.append((basis, end))
        return None if end is None else 30.0

    recompute(ticket, [call], AtTheEdge(), minutes)  # type: ignore[arg-type]
    named = {c.name: i for i, c in enumerate(t.tickets.columns)}
    assert ticket[named["accept_due"]] == "2026-10-12 00:50:00.000000"  # the report's: counted again (+10)
    assert ticket[named["centre_basis"]] == "calendar"
    assert (ticket[named["provisional"]], ticket[named["time_basis"]], ticket[named["feedback_due"]]) == \
        (True, "working", "2026-10-14 01:00:00.000000")  # the dispatch's: as they were
    assert call == row(t.calls, dispatch_no=1, role="lead", dispatched_at="2026-10-12 01:00:00.000000",
                       ack_due="2026-10-12 02:00:00.000000", handle_due="2026-10-13 01:00:00.000000",
                       feedback_due="2026-10-14 01:00:00.000000", time_basis="working", escalate_every_minutes=60,
                       calendar="fingerprint", answered_at="2026-10-12 01:30:00.000000", ack_minutes=30.0)
    assert counted == [("working", "2026-10-12 01:30:00.000000"), ("working", None)]


def test_the_tickets_a_question_touches_are_the_same_asked_ticket_by_ticket(tmp_path: Path) -> None:
    """``verdicts.touches`` (each ticket looked up by its own rows: how a what-if on PostgreSQL
    finds the tickets whose deadlines moved) names the tickets ``verdicts.touched`` finds through
    the period's time indexes — for whole and partial weeks, as of their end and mid-way, for the
    street and one of its communities."""
    from sqlalchemy import func, select

    from dispatch.domain.reference import load_reference
    from dispatch.projections import tables as t
    from dispatch.projections import verdicts as v
    from dispatch.projections.measures import Question

    sample = load_reference(None, boundaries=False)
    month = bootstrap(str(tmp_path / "month.db"), clock=SimulatedClock(SIM_START))
    try:  # with the watchdog: escalations too
        run_embedded(month, iter(list(simulate(sample, "xinqi", 14, 25, 3, SIM_START))), start=SIM_START,
                     end=SIM_START + timedelta(days=14), watchdog=True)
        with month.engine.connect() as conn:
            community = conn.execute(select(t.tickets.c.community).group_by(t.tickets.c.community)
                                     .order_by(func.count().desc()).limit(1)).scalar()
            sizes: dict[Any, int] = {}
            for days, length, hours in ((0, 7, 30), (7, 7, 60), (3, 3, 30), (9, 5, 50)):
                start = SIM_START + timedelta(days=days)
                end = start + timedelta(days=length)
                for as_of in (end - timedelta(microseconds=1), start + timedelta(hours=hours)):
                    for place in (None, community):
                        q = Question(as_of, start, end, community=place)
                        found = v.touched(conn, q)
                        assert sorted(conn.execute(select(t.tickets.c.ticket_id).where(v.touches(q))).scalars()) \
                            == found
                        sizes[(days, as_of, place)] = len(found)
            assert min(sizes.values()) > 0
            assert all(sizes[(d, a, community)] < sizes[(d, a, None)] for d, a, p in sizes if p is None)
            assert conn.execute(select(func.count()).select_from(t.escalations)).scalar()  # (the watchdog's)
    finally:
        month.close()


def counted_as_listed(runtime: Runtime) -> int:
    """``verdicts.touched_count`` (the tickets reported in a period, and of those reported before
    it the ones with a row in it) equals the number of tickets ``touched`` lists (every row's
    ticket, gathered), for periods starting and ending anywhere in the story, as of its end or
    mid-way, of the district or of a street or a community. Returns the questions asked whose
    count includes a ticket reported before the period (the second part)."""
    from sqlalchemy import select

    from dispatch.projections import measures as m
    from dispatch.projections import tables as t
    from dispatch.projections import verdicts as v
    from tests.unit.test_replay_helpers import T0

    with runtime.engine.connect() as conn:
        streets = conn.execute(select(t.tickets.c.street).distinct().order_by(t.tickets.c.street)).scalars().all()
        communities = conn.execute(select(t.tickets.c.community).distinct()
                                   .order_by(t.tickets.c.community)).scalars().all()
        places: list[dict[str, str | None]] = [{}, {"street": streets[0]}, {"community": communities[-1]}]
        before = 0
        for hours in range(-6, 6 * 24, 9):
            start = T0 + timedelta(hours=hours)
            for length, at in ((timedelta(hours=30), 1.0), (timedelta(days=3), 0.5), (timedelta(days=9), 1.0)):
                end = start + length
                as_of = start + length * at - timedelta(microseconds=1)
                for place in places:
                    q = m.Question(as_of, start, end, **place)
                    q_all = m.Question(as_of, None, end, **place)
                    listed = len(v.touched(conn, q))
                    assert v.touched_count(conn, q) == listed, (start, length, at, place)
                    assert v.touched_count(conn, q_all) == len(v.touched(conn, q_all))
                    reported = conn.execute(select(t.tickets.c.ticket_id).where(
                        q.within(t.tickets.c.reported_at), *q.place(t.tickets.c))).scalars().all()
                    before += listed > len(reported)
    return before


def test_the_tickets_behind_a_period_counted_without_listing_them(tmp_path: Path) -> None:
    from dispatch.service.queries import for_reading
    from tests.unit.test_replay_helpers import run_scenario

    runtime = run_scenario(tmp_path / "count.db", n=80)
    try:
        for_reading(runtime)
        assert counted_as_listed(runtime) > 20  # periods whose tickets include some reported before them
    finally:
        runtime.close()
