"""Missed deadlines, from the read model: the one definition the watchdog escalates and the
overdue list shows (``docs/figures.md``: ``ack_overdue`` / ``handle_overdue`` count the same).

On an open ticket's current dispatch (calls not superseded by a redispatch):
- ``ack``: a call not answered, past its report-in deadline;
- ``handle``: a lead call not rejected and not handled, past its handling deadline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, and_, or_, select

from dispatch.lifecycle import TERMINAL
from dispatch.projections import tables as t

__all__ = ["MissedDeadline", "missed_deadlines"]


@dataclass(frozen=True)
class MissedDeadline:
    ticket_id: str
    call_id: str
    dispatch_no: int
    department: str
    role: str
    kind: str  # "ack" or "handle"
    due: datetime
    time_basis: str | None
    escalate_every_minutes: int
    level: str
    status: str
    street: str
    community: str
    grid: str
    category: str


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
                    tk.community, tk.grid, tk.category)
             .join(t.tickets, tk.ticket_id == c.ticket_id)
             .where(c.superseded_at.is_(None), tk.status.not_in(TERMINAL), or_(missed_ack, missed_handle)))
    for column, value in ((tk.street, street), (tk.community, community), (c.department, department)):
        if value is not None:
            query = query.where(column == value)
    out = []
    with engine.connect() as conn:
        for r in conn.execute(query):
            kinds = []
            if r.answer is None and r.ack_due < now:
                kinds.append(("ack", r.ack_due))
            if r.role == "lead" and r.answer != "rejected" and r.handled_at is None and r.handle_due < now:
                kinds.append(("handle", r.handle_due))
            out += [MissedDeadline(r.ticket_id, r.call_id, r.dispatch_no, r.department, r.role, kind, due,
                                   r.time_basis, r.escalate_every_minutes, r.level, r.status, r.street, r.community,
                                   r.grid, r.category) for kind, due in kinds]
    out.sort(key=lambda m: (m.due, m.ticket_id, m.kind, m.call_id))
    return out
