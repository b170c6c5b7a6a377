"""Missed deadlines, from the read model: the one definition the watchdog escalates and the
overdue list shows (``docs/figures.md``: ``ack_overdue`` / ``handle_overdue`` count the same).

On an open ticket that is not on hold (挂起 stops its clocks):
- ``accept``: still reported (not accepted), past the centre's accept deadline;
- ``dispatch``: never dispatched yet, past the centre's dispatch deadline;
and on its current dispatch (calls not superseded by a redispatch):
- ``ack``: a call not answered, past its report-in deadline;
- ``handle``: a lead call not rejected and not handled, past its handling deadline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, or_, select

from dispatch.domain.lifecycle import TERMINAL
from dispatch.projections import tables as t

__all__ = ["MissedDeadline", "missed_deadlines"]


@dataclass(frozen=True)
class MissedDeadline:
    ticket_id: str
    call_id: str  # "" for the centre's own deadlines
    dispatch_no: int
    department: str  # "" for the centre's own deadlines
    role: str  # "lead", "cooperating" or "centre"
    kind: str  # "accept", "dispatch", "ack" or "handle"
    due: datetime
    time_basis: str | None
    escalate_every_minutes: int
    level: str
    status: str
    street: str
    community: str
    grid: str
    category: str
    priority: str = ""
    case_no: str | None = None


def missed_deadlines(engine: Engine, now: datetime, *, street: str | None = None, community: str | None = None,
                     department: str | None = None) -> list[MissedDeadline]:
    """Every deadline missed at ``now`` (optionally in one street or community, or of one
    department), earliest due first."""
    t.ensure_tables(engine)
    c, tk = t.calls.c, t.tickets.c
    missed_ack = and_(c.answer.is_(None), c.ack_due < now)
    missed_handle = and_(c.role == "lead", or_(c.answer.is_(None), c.answer != "rejected"), c.handled_at.is_(None),
                         c.handle_due < now)
    query = (select(c.ticket_id, c.call_id, c.dispatch_no, c.department, c.role, c.answer, c.ack_due, c.handle_due,
                    c.handled_at, c.time_basis, c.escalate_every_minutes, tk.level, tk.status, tk.street,
                    tk.community, tk.grid, tk.category, tk.priority, tk.case_no)
             .join(t.tickets, tk.ticket_id == c.ticket_id)
             .where(c.superseded_at.is_(None), tk.status.not_in(TERMINAL), tk.held_since.is_(None),
                    or_(missed_ack, missed_handle)))
    for column, value in ((tk.street, street), (tk.community, community), (c.department, department)):
        if value is not None:
            query = query.where(column == value)
    out = []
    with engine.connect() as conn:
        if department is None:
            out += _missed_by_centre(conn, now, street, community)
        for r in conn.execute(query):
            kinds = []
            if r.answer is None and r.ack_due < now:
                kinds.append(("ack", r.ack_due))
            if r.role == "lead" and r.answer != "rejected" and r.handled_at is None and r.handle_due < now:
                kinds.append(("handle", r.handle_due))
            out += [MissedDeadline(r.ticket_id, r.call_id, r.dispatch_no, r.department, r.role, kind, due,
                                   r.time_basis, r.escalate_every_minutes, r.level, r.status, r.street, r.community,
                                   r.grid, r.category, r.priority, r.case_no) for kind, due in kinds]
    out.sort(key=lambda m: (m.due, m.ticket_id, m.kind, m.call_id))
    return out


def _centre_query(street: bool, community: bool) -> Any:
    """Built once per filter shape (the watchdog asks every tick): tickets the centre still has
    to accept or dispatch, past the deadline at ``:now``."""
    key = (street, community)
    query = _CENTRE_QUERIES.get(key)
    if query is None:
        tk, now = t.tickets.c, bindparam("now", type_=t.UtcDateTime())
        late_accept = and_(tk.status == "reported", tk.accept_due < now)
        late_dispatch = and_(tk.dispatch_no == 0, tk.dispatch_due < now)
        query = select(tk.ticket_id, tk.status, tk.accept_due, tk.dispatch_due, tk.centre_basis, tk.level,
                       tk.street, tk.community, tk.grid, tk.category, tk.priority, tk.case_no).where(
            tk.status.in_(("reported", "accepted")), tk.held_since.is_(None), or_(late_accept, late_dispatch))
        if street:
            query = query.where(tk.street == bindparam("street"))
        if community:
            query = query.where(tk.community == bindparam("community"))
        query = _CENTRE_QUERIES[key] = query
    return query


_CENTRE_QUERIES: dict[tuple[bool, bool], Any] = {}


def _missed_by_centre(conn: Connection, now: datetime, street: str | None,
                      community: str | None) -> list[MissedDeadline]:
    """The centre's own missed deadlines: accept (while reported) and dispatch (before the first
    whistle). ``escalate_every_minutes`` is 0 here: the SLA rule says it (the watchdog asks it)."""
    params: dict[str, Any] = {"now": now}
    if street is not None:
        params["street"] = street
    if community is not None:
        params["community"] = community
    out = []
    for r in conn.execute(_centre_query(street is not None, community is not None), params):
        for kind, due in (("accept", r.accept_due if r.status == "reported" else None), ("dispatch", r.dispatch_due)):
            if due is not None and due < now:
                out.append(MissedDeadline(r.ticket_id, "", 0, "", "centre", kind, due, r.centre_basis, 0, r.level,
                                          r.status, r.street, r.community, r.grid, r.category, r.priority,
                                          r.case_no))
    return out
