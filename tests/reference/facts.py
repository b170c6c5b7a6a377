"""The reference (the Python path the SQL replaced, kept to hold ``dispatch.projections.measures``
to it). Facts as of an instant: the read-model rows with everything after ``as_of`` removed.

A call answered after ``as_of`` is unanswered here, an evaluation after it is absent,
a ticket's state is the last status reached at or before it — so every figure computed
from ``Facts`` is the figure a rebuild with ``until=as_of`` would give.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from typing import Any

from sqlalchemy import Connection, Engine, Select, and_, select

from dispatch.domain.ladder import LEVELS
from dispatch.projections import tables as t

__all__ = ["CallFact", "EvalFact", "EscalationFact", "Facts", "TicketFact", "load_facts", "relevant_tickets"]


@dataclass(slots=True)
class TicketFact:
    ticket_id: str
    grid: str
    community: str
    street: str
    district: str
    category: str
    priority: str
    channel: str
    reported_at: datetime
    state: str = "reported"
    closed_at: datetime | None = None
    level: str = LEVELS[0]
    accept_due: datetime | None = None
    dispatch_due: datetime | None = None
    accepted_at: datetime | None = None
    first_dispatched_at: datetime | None = None
    closed_via: str | None = None


@dataclass(slots=True)
class CallFact:
    ticket_id: str
    call_id: str
    dispatch_no: int
    department: str
    role: str
    dispatched_at: datetime
    ack_due: datetime
    answer: str | None
    answered_at: datetime | None
    handle_due: datetime | None
    feedback_due: datetime | None
    handled_at: datetime | None
    superseded_at: datetime | None
    time_basis: str
    escalate_every_minutes: int
    closed_out_at: datetime | None = None


@dataclass(slots=True)
class EvalFact:
    ticket_id: str
    version: int
    at: datetime
    satisfaction: str
    resolved: bool
    contacted: bool
    department: str | None
    reopened_at: datetime | None


@dataclass(slots=True)
class EscalationFact:
    ticket_id: str
    at: datetime
    deadline: str
    rung: int
    to_level: str
    from_level: str = ""

    @property
    def raised(self) -> bool:
        """It moved the ticket up (an escalation recorded before per-ticket supervision may not have)."""
        return self.from_level != self.to_level


@dataclass
class Facts:
    as_of: datetime
    tickets: dict[str, TicketFact] = field(default_factory=dict)
    calls: list[CallFact] = field(default_factory=list)
    evaluations: list[EvalFact] = field(default_factory=list)
    escalations: list[EscalationFact] = field(default_factory=list)


def _upto(value: datetime | None, as_of: datetime) -> datetime | None:
    return value if value is not None and value <= as_of else None


def _placed(query: Select[Any], community: str | None, street: str | None) -> Select[Any]:
    tk = t.tickets.c
    if community is not None:
        query = query.where(tk.community == community)
    if street is not None:
        query = query.where(tk.street == street)
    return query


def relevant_tickets(conn: Connection, as_of: datetime, start: datetime, end: datetime | None, *,
                     community: str | None = None, street: str | None = None) -> list[str]:
    """The tickets any figure of the period ``[start, end)`` as of ``as_of`` can count: reported,
    closed, dispatched to, evaluated or escalated in the period (the open work at the instant is
    counted in the database: ``dispatch.projections.open_work``). Each part is one indexed
    range, so the cost follows the period, not the history before it."""
    tk, c, ev, es = t.tickets.c, t.calls.c, t.evaluations.c, t.escalations.c

    def within(column: Any) -> Any:  # in the period, and at or before the instant
        return and_(column >= start, column <= as_of, *([column < end] if end is not None else []))

    found: set[str] = set()
    parts = [
        select(tk.ticket_id).where(within(tk.reported_at)),
        select(tk.ticket_id).where(within(tk.closed_at)),
    ]
    for part in parts:
        found.update(conn.execute(_placed(part, community, street)).scalars())
    # the other facts by their own time index; their tickets' place checked by primary key
    elsewhere: set[str] = set()
    for table, column in ((t.calls, c.dispatched_at), (t.evaluations, ev.at), (t.escalations, es.at)):
        elsewhere.update(conn.execute(select(table.c.ticket_id).where(within(column)).distinct()).scalars())
    elsewhere -= found
    if community is None and street is None:
        return sorted(found | elsewhere)
    pending = sorted(elsewhere)
    for i in range(0, len(pending), _CHUNK):
        found.update(conn.execute(_placed(select(tk.ticket_id).where(tk.ticket_id.in_(pending[i:i + _CHUNK])),
                                          community, street)).scalars())
    return sorted(found)


_CHUNK = 900


def load_facts(engine: Engine, as_of: datetime, *, community: str | None = None,
               street: str | None = None, start: datetime | None = None, end: datetime | None = None) -> Facts:
    """Every fact of the tickets in scope (reported at or before ``as_of``). With a period
    start, only the tickets a figure of ``[start, end)`` can count (``relevant_tickets``)."""
    tk = t.tickets.c
    facts = Facts(as_of=as_of)
    if start is not None:
        with engine.connect() as conn:
            ids = relevant_tickets(conn, as_of, start, end, community=community, street=street)
        for i in range(0, len(ids), _CHUNK):
            _load(engine, as_of, select(tk.ticket_id).where(tk.ticket_id.in_(ids[i:i + _CHUNK]),
                                                            tk.reported_at <= as_of), facts)
        return facts
    scope: Select[Any] = _placed(select(tk.ticket_id).where(tk.reported_at <= as_of), community, street)
    _load(engine, as_of, scope, facts)
    return facts


def _load(engine: Engine, as_of: datetime, scope: Select[Any], facts: Facts) -> None:
    """Every fact of the tickets ``scope`` selects, as of ``as_of``, into ``facts``."""
    tk = t.tickets.c
    with engine.connect() as conn:
        cols = [tk.ticket_id, tk.grid, tk.community, tk.street, tk.district, tk.category, tk.priority,
                tk.channel, tk.reported_at, tk.closed_at, tk.accept_due, tk.dispatch_due, tk.accepted_at,
                tk.first_dispatched_at, tk.closed_via]
        for row in conn.execute(select(*cols).where(tk.ticket_id.in_(scope))):
            closed_at = _upto(row.closed_at, as_of)
            facts.tickets[row.ticket_id] = TicketFact(
                ticket_id=row.ticket_id, grid=row.grid, community=row.community, street=row.street,
                district=row.district, category=row.category, priority=row.priority, channel=row.channel,
                reported_at=row.reported_at, closed_at=closed_at, accept_due=row.accept_due,
                dispatch_due=row.dispatch_due, accepted_at=_upto(row.accepted_at, as_of),
                first_dispatched_at=_upto(row.first_dispatched_at, as_of),
                closed_via=row.closed_via if closed_at is not None else None)
        st = t.ticket_states.c
        for tid, state in conn.execute(select(st.ticket_id, st.state).where(st.ticket_id.in_(scope), st.at <= as_of)
                                       .order_by(st.ticket_id, st.version)):
            facts.tickets[tid].state = state
        es = t.escalations.c
        for row in conn.execute(select(es.ticket_id, es.at, es.deadline, es.rung, es.to_level, es.from_level)
                                .where(es.ticket_id.in_(scope), es.at <= as_of).order_by(es.ticket_id, es.version)):
            fact = EscalationFact(*row)
            facts.escalations.append(fact)
            if fact.raised:
                facts.tickets[row.ticket_id].level = row.to_level
        c = t.calls.c
        for row in conn.execute(select(t.calls).where(c.ticket_id.in_(scope), c.dispatched_at <= as_of)
                                .order_by(c.ticket_id, c.dispatch_no, c.call_id)):
            m = row._mapping
            answered = _upto(m["answered_at"], as_of)
            facts.calls.append(CallFact(
                m["ticket_id"], m["call_id"], m["dispatch_no"], m["department"], m["role"], m["dispatched_at"],
                m["ack_due"], m["answer"] if answered else None, answered, m["handle_due"], m["feedback_due"],
                _upto(m["handled_at"], as_of), _upto(m["superseded_at"], as_of), m["time_basis"],
                m["escalate_every_minutes"], _upto(m["closed_out_at"], as_of)))
        ev = t.evaluations.c
        for row in conn.execute(select(t.evaluations).where(ev.ticket_id.in_(scope), ev.at <= as_of)
                                .order_by(ev.ticket_id, ev.version)):
            m = row._mapping
            facts.evaluations.append(EvalFact(
                m["ticket_id"], m["version"], m["at"], m["satisfaction"], bool(m["resolved"]),
                bool(m["contacted"]), m["department"], _upto(m["reopened_at"], as_of)))
