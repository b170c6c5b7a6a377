"""Open work as of an instant, counted in the database: how many tickets are open and in which
status, how many of their current calls are past the report-in or handling deadline, how many
are escalated above the grid — per community or grid of a street or community.

The same definitions as docs/figures.md (`open`, `open_by_state`, `ack_overdue`,
`handle_overdue`, `open_above_grid`): a ticket is open at T when it was reported by T and had
not ended by T (``tickets.ended_at``: an interval (reported_at, ended_at) read through
(place, ended_at) indexes); its status at T is the last status row at or before T;
a call counts while it was not superseded by T, unanswered (or, for handling, not rejected and
not handled) by T and past its deadline. Each query touches the open tickets only, so a
dashboard's cost follows the open work, not the history behind it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, exists, func, or_, select, union_all

from dispatch.projections import tables as t
from dispatch.projections.side_by_side import side_by_side

__all__ = ["counted", "open_at", "open_work", "open_work_readers", "total"]


def _empty() -> dict[str, Any]:
    return {"open": 0, "open_by_state": {}, "ack_overdue": 0, "handle_overdue": 0, "open_above_grid": 0}


def open_work(engine: Engine, as_of: datetime, *, by: str, street: str | None = None,
              community: str | None = None) -> dict[str, dict[str, Any]]:
    """Open-work figures per unit (``by``: ``community`` or ``grid``) of the scope."""
    readers = open_work_readers(as_of, by=by, street=street, community=community)
    with engine.connect() as conn:
        return counted(side_by_side(engine, conn, readers))


def open_work_readers(as_of: datetime, *, by: str, street: str | None = None,
                      community: str | None = None) -> dict[str, Callable[[Connection], list[Any]]]:
    """``open_work``'s queries, each read on the connection it is given (so they may run side by
    side: ``side_by_side``); ``counted`` makes the figures of their rows."""
    tk, st, c, es = t.tickets.c, t.ticket_states.c, t.calls.c, t.escalations.c
    unit = tk.community if by == "community" else tk.grid
    scope = [tk.ticket_id.in_(open_at(as_of, street, community)), tk.reported_at <= as_of]
    earlier = t.ticket_states.alias("earlier")
    last = (select(func.max(earlier.c.version)).where(earlier.c.ticket_id == tk.ticket_id, earlier.c.at <= as_of)
            .correlate(t.tickets).scalar_subquery())
    states = (select(unit, t.ticket_states.c.state, func.count())
              .select_from(t.tickets.join(t.ticket_states, and_(st.ticket_id == tk.ticket_id, st.version == last)))
              .where(*scope).group_by(unit, st.state))
    raised = exists().where(es.ticket_id == tk.ticket_id, es.at <= as_of, es.from_level != es.to_level)
    above = select(unit, func.count()).where(*scope, raised).group_by(unit)
    current = and_(c.ticket_id == tk.ticket_id, c.dispatched_at <= as_of,
                   or_(c.superseded_at.is_(None), c.superseded_at > as_of))
    unanswered = or_(c.answered_at.is_(None), c.answered_at > as_of)
    late_ack = select(unit, func.count()).select_from(t.tickets.join(t.calls, current)).where(
        *scope, unanswered, c.ack_due < as_of).group_by(unit)
    not_rejected = or_(unanswered, c.answer != "rejected")
    late_handle = select(unit, func.count()).select_from(t.tickets.join(t.calls, current)).where(
        *scope, c.role == "lead", not_rejected, or_(c.handled_at.is_(None), c.handled_at > as_of),
        c.handle_due < as_of).group_by(unit)

    def rows(query: Any) -> Callable[[Connection], list[Any]]:
        return lambda conn: list(conn.execute(query).all())

    return {"open_by_state": rows(states), "open_above_grid": rows(above), "ack_overdue": rows(late_ack),
            "handle_overdue": rows(late_handle)}


def counted(found: dict[str, list[Any]]) -> dict[str, dict[str, Any]]:
    """The figures per unit from the rows of ``open_work_readers``' queries (keyed as they are)."""
    out: dict[str, dict[str, Any]] = defaultdict(_empty)
    for key, state, n in found["open_by_state"]:
        out[key]["open"] += n
        out[key]["open_by_state"][state] = n
    for figure in ("open_above_grid", "ack_overdue", "handle_overdue"):
        for key, n in found[figure]:
            out[key][figure] = n
    for figures in out.values():
        figures["open_by_state"] = dict(sorted(figures["open_by_state"].items()))
    return dict(out)


def open_at(as_of: datetime, street: str | None, community: str | None) -> Any:
    """The tickets not ended by ``as_of`` (open then if reported by then) as two index
    ranges on (place, ended_at): those not ended at all and those ended after the instant. So
    the cost follows the open work (and, looking back, what ended since), not the history."""
    tk = t.tickets.c
    place = []
    if street is not None:
        place.append(tk.street == street)
    if community is not None:
        place.append(tk.community == community)
    never = select(tk.ticket_id).where(*place, tk.ended_at.is_(None))
    later = select(tk.ticket_id).where(*place, tk.ended_at > as_of)
    return union_all(never, later)  # the caller keeps those reported by the instant


def total(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures of several units together (every ticket is in exactly one unit)."""
    whole = _empty()
    for part in parts:
        for key in ("open", "ack_overdue", "handle_overdue", "open_above_grid"):
            whole[key] += part[key]
        for state, n in part["open_by_state"].items():
            whole["open_by_state"][state] = whole["open_by_state"].get(state, 0) + n
    whole["open_by_state"] = dict(sorted(whole["open_by_state"].items()))
    return whole
