"""The figures computed in the database (``dispatch.projections.measures``) equal those of the
Python path they replaced — every fact up to the instant loaded and counted one by one, kept here
only as the reference (``tests/reference``) — on a simulated history, for several periods, as-of
instants, groupings, places and period buckets. On PostgreSQL: tests/integration."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from dispatch.bootstrap import Runtime, bootstrap
from dispatch.domain.clock import SimulatedClock
from dispatch.projections import dashboard, sla_stats
from dispatch.service.simulation import simulate
from dispatch.service.simulation.runner import run_embedded
from tests.reference import dashboard as ref_dashboard
from tests.reference import facts
from tests.reference import sla_stats as ref_sla
from tests.unit.test_simulation import START

DAYS = 20


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    runtime = bootstrap(str(tmp_path_factory.mktemp("window") / "w.db"), clock=SimulatedClock(START))
    end = START + timedelta(days=DAYS)
    run_embedded(runtime, simulate(runtime.reference, "xinqi", DAYS, 60, 5, START), start=START, end=end)
    yield runtime
    runtime.close()


QUESTIONS = [  # (period start, period end, as-of), days after START; None: unbounded
    (3, 10, 10), (3, 10, 15), (12, 13, 12.5), (0, 20, 20), (15, 20, 17.25), (5, 6, 19), (18, 19, 20),
    (None, None, 11.6), (None, 8, 20)]


def _at(days: float | None) -> datetime | None:
    return None if days is None else START + timedelta(days=days)


def _compute(runtime: Runtime, start: datetime | None, end: datetime | None, as_of: datetime, *,
             sla: Any, board: Any) -> dict[str, Any]:
    ref, engine = runtime.reference, runtime.engine
    out: dict[str, Any] = {
        "street board": board.street_dashboard(engine, ref, "xinqi", as_of=as_of, start=start, end=end),
        "community board": board.community_dashboard(engine, ref, "xq-baihe", as_of=as_of, start=start, end=end)}
    for by in ("department", "community", "category", "street"):
        out[by] = sla.sla_statistics(engine, ref, by=by, as_of=as_of, start=start, end=end)
    out["daily"] = sla.sla_statistics(engine, ref, by="community", period="day", as_of=as_of, start=start, end=end)
    out["weekly"] = sla.sla_statistics(engine, ref, by="department", period="week", as_of=as_of, start=start,
                                       end=end)
    out["placed"] = sla.sla_statistics(engine, ref, by="department", as_of=as_of, start=start, end=end,
                                       community="xq-baihe")
    return out


def _empty(row: dict[str, Any]) -> bool:
    return not (row["dispatched"] or row["tickets_evaluated"] or row["evaluated"] or row["closed_tickets"]
                or row.get("accept_on_time") or row.get("accept_late") or row.get("dispatch_on_time")
                or row.get("dispatch_late"))


def same(new: Any, old: Any, where: str = "") -> None:
    """Equal, floats to 1e-9 (a mean summed in another order)."""
    if isinstance(old, float) and isinstance(new, (int, float)):
        assert math.isclose(new, old, rel_tol=1e-9), f"{where}: {new} != {old}"
    elif isinstance(old, dict):
        assert isinstance(new, dict) and new.keys() == old.keys(), f"{where}: {sorted(new)} != {sorted(old)}"
        for k in old:
            same(new[k], old[k], f"{where}.{k}")
    elif isinstance(old, list):
        assert isinstance(new, list) and len(new) == len(old), f"{where}: {new} != {old}"
        for i, (a, b) in enumerate(zip(new, old)):
            same(a, b, f"{where}[{i}]")
    else:
        assert new == old, f"{where}: {new!r} != {old!r}"


def compare(runtime: Runtime, question: tuple[float | None, float | None, float]) -> dict[str, Any]:
    start, end, as_of = _at(question[0]), _at(question[1]), _at(question[2])
    assert as_of is not None
    new = _compute(runtime, start, end, as_of, sla=sla_stats, board=dashboard)
    old = _compute(runtime, start, end, as_of, sla=ref_sla, board=ref_dashboard)
    same(new["street board"], old["street board"], "street board")
    same(new["community board"], old["community board"], "community board")
    for name in ("department", "community", "category", "street", "daily", "weekly", "placed"):
        by = new[name]["by"]
        rows = {(r[by], r.get("period")): r for r in new[name]["rows"]}
        for r in old[name]["rows"]:  # a unit with nothing counted in the period is not listed; the rest agree
            if (r[by], r.get("period")) in rows:
                same(rows[(r[by], r.get("period"))], r, f"{name}:{r[by]}:{r.get('period')}")
            else:
                assert _empty(r), r
        assert len(rows) <= len(old[name]["rows"])
        same(new[name].get("ranking"), old[name].get("ranking"), f"{name}.ranking")
        same(new[name].get("cooperation_ranking"), old[name].get("cooperation_ranking"), f"{name}.cooperation")
    return new


@pytest.mark.parametrize("question", QUESTIONS)
def test_every_figure_computed_in_the_database_equals_the_python_reference(
        history: Runtime, question: tuple[float | None, float | None, float]) -> None:
    new = compare(history, question)
    if question != (18, 19, 20):  # the history has something in every other question
        assert new["street board"]["reported"] > 0 or new["street board"]["closed"] > 0
        assert any(r["dispatched"] for r in new["department"]["rows"])


def _open_figures_in_python(runtime: Runtime, as_of: datetime, by: str) -> dict[str, dict[str, Any]]:
    """The open work from every fact up to the instant, as the dashboards computed it before
    (the reference the database's counts are held to)."""
    from collections import Counter

    from dispatch.domain.lifecycle import TERMINAL

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
