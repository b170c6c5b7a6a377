"""Cost follows the question: a period's figures load only the tickets a figure of that period can
count (``dispatch.projections.facts.relevant_tickets``), and give exactly what loading the whole
history gives — checked on a simulated history for several periods and as-of instants (the
whole-history path is kept as the reference). On PostgreSQL: tests/integration."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dispatch.bootstrap import Runtime, bootstrap
from dispatch.clock import SimulatedClock
from dispatch.projections import dashboard, facts, sla_stats
from dispatch.simulation import simulate
from dispatch.simulation.runner import run_embedded
from tests.unit.test_simulation import START

DAYS = 20


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    runtime = bootstrap(str(tmp_path_factory.mktemp("window") / "w.db"), clock=SimulatedClock(START))
    end = START + timedelta(days=DAYS)
    run_embedded(runtime, simulate(runtime.reference, "xinqi", DAYS, 60, 5, START), start=START, end=end)
    yield runtime
    runtime.close()


def whole_history(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reference path: every fact up to the instant, whatever the period."""
    original = facts.load_facts

    def load_all(engine: Any, as_of: datetime, *, community: str | None = None, street: str | None = None,
                 start: datetime | None = None, end: datetime | None = None) -> Any:
        return original(engine, as_of, community=community, street=street)

    monkeypatch.setattr(dashboard, "load_facts", load_all)
    monkeypatch.setattr(sla_stats, "load_facts", load_all)


QUESTIONS = [  # (period start, period end, as-of), days after START
    (3, 10, 10), (3, 10, 15), (12, 13, 12.5), (0, 20, 20), (15, 20, 17.25), (5, 6, 19), (18, 19, 20)]


def _at(days: float) -> datetime:
    return START + timedelta(days=days)


def _compute(runtime: Runtime, start: datetime, end: datetime, as_of: datetime) -> dict[str, Any]:
    ref, engine = runtime.reference, runtime.engine
    out: dict[str, Any] = {
        "street": dashboard.street_dashboard(engine, ref, "xinqi", as_of=as_of, start=start, end=end),
        "community": dashboard.community_dashboard(engine, ref, "xq-baihe", as_of=as_of, start=start, end=end)}
    for by in ("department", "community", "category"):
        out[by] = sla_stats.sla_statistics(engine, ref, by=by, as_of=as_of, start=start, end=end)
    out["weekly"] = sla_stats.sla_statistics(engine, ref, by="community", period="day", as_of=as_of, start=start,
                                             end=end)
    return out


def _empty(row: dict[str, Any]) -> bool:
    return not (row["dispatched"] or row["tickets_evaluated"] or row["evaluated"] or row.get("accept_on_time")
                or row.get("accept_late") or row.get("dispatch_on_time") or row.get("dispatch_late"))


@pytest.mark.parametrize("question", QUESTIONS)
def test_a_periods_figures_from_its_own_tickets_equal_those_from_the_whole_history(
        history: Runtime, question: tuple[float, float, float], monkeypatch: pytest.MonkeyPatch) -> None:
    start, end, as_of = (_at(d) for d in question)
    windowed = _compute(history, start, end, as_of)
    with monkeypatch.context() as patch:
        whole_history(patch)
        reference = _compute(history, start, end, as_of)
    assert windowed["street"] == reference["street"]
    assert windowed["community"] == reference["community"]
    assert windowed["street"]["reported"] > 0 or question == (18, 19, 20)
    for by in ("department", "community", "category", "weekly"):
        new, old = windowed[by], reference[by]
        key = "community" if by == "weekly" else by
        rows = {(r[key], r.get("period")): r for r in new["rows"]}
        for r in old["rows"]:  # a unit with nothing in the period is not listed any more; the rest agree
            if (r[key], r.get("period")) in rows:
                assert rows[(r[key], r.get("period"))] == r
            else:
                assert _empty(r), r
        assert len(rows) <= len(old["rows"])
        assert new.get("ranking") == old.get("ranking") and new.get("cooperation_ranking") == old.get(
            "cooperation_ranking")


def _open_figures_in_python(runtime: Runtime, as_of: datetime, by: str) -> dict[str, dict[str, Any]]:
    """The open work from every fact up to the instant, as the dashboards computed it before
    (the reference the database's counts are held to)."""
    from collections import Counter

    from dispatch.lifecycle import TERMINAL

    everything = facts.load_facts(runtime.engine, as_of, street="xinqi")
    out: dict[str, dict[str, Any]] = {}
    for unit in {getattr(tk, by) for tk in everything.tickets.values()}:
        tickets = [tk for tk in everything.tickets.values() if getattr(tk, by) == unit]
        is_open = {tk.ticket_id: tk.state not in TERMINAL for tk in tickets}
        current = [c for c in everything.calls if c.ticket_id in is_open and c.superseded_at is None
                   and is_open[c.ticket_id]]
        by_state = Counter(tk.state for tk in tickets if is_open[tk.ticket_id])
        figures = {"open": sum(by_state.values()), "open_by_state": dict(sorted(by_state.items())),
                   "ack_overdue": sum(1 for c in current if c.answered_at is None and c.ack_due < as_of),
                   "handle_overdue": sum(1 for c in current if c.role == "lead" and c.answer != "rejected"
                                         and c.handled_at is None and c.handle_due is not None
                                         and c.handle_due < as_of),
                   "open_above_grid": sum(1 for tk in tickets if is_open[tk.ticket_id] and tk.level != "grid")}
        if figures["open"]:
            out[unit] = figures
    return out


@pytest.mark.parametrize("days", [0.5, 3.25, 9, 14.7, 20])
def test_the_open_work_counted_in_the_database_equals_the_facts_counted_one_by_one(
        history: Runtime, days: float) -> None:
    from dispatch.projections.open_work import open_work

    as_of = _at(days)
    for by in ("community", "grid"):
        counted = {k: v for k, v in open_work(history.engine, as_of, by=by, street="xinqi").items() if v["open"]}
        assert counted == _open_figures_in_python(history, as_of, by)
        assert sum(v["open"] for v in counted.values()) > 0


def test_a_period_reads_only_its_own_tickets(history: Runtime) -> None:
    with history.engine.connect() as conn:
        week = facts.relevant_tickets(conn, _at(10), _at(3), _at(10), street="xinqi")
        day = facts.relevant_tickets(conn, _at(13), _at(12), _at(13), street="xinqi")
        everything = facts.relevant_tickets(conn, _at(20), START, _at(20), street="xinqi")
    assert 0 < len(day) < len(week) < len(everything)
