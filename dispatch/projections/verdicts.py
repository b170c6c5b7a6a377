"""Which tickets a period's figures read, and every deadline's verdict on each of them: what a
what-if (``dispatch.whatif``) copies and compares.

``touched``: the tickets behind any row a figure of the period reads (calls dispatched, tickets
reported, first dispatched or closed, evaluations and escalations in it; with ``open_too`` the
tickets open at the instant, for a dashboard's open work), each found through its own time index.

``verdicts``: per ticket and deadline — report-in (``ack:<call>``), handling (``handle:<call>``),
the centre's accept and dispatch, closing (``close``) — its due time, when it was met and the
verdict as of the instant, by the definitions of docs/figures.md: ``on_time``, ``late`` (met after
it), ``overdue`` (unmet, past it), ``pending`` (unmet, not yet due) or ``not_owed`` (a call closed
out before its report-in deadline, a ticket that ended without a dispatch or a closing).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, union

from dispatch.projections import tables as t
from dispatch.projections.measures import Question
from dispatch.projections.open_work import open_at

__all__ = ["lead_calls", "touched", "touched_query", "verdicts"]

_CHUNK = 500


def touched(conn: Connection, q: Question, *, open_too: bool = False) -> list[str]:
    """The ids of the tickets whose rows the figures of ``q`` read."""
    return sorted(set(conn.execute(touched_query(q, open_too=open_too)).scalars()))


def touched_query(q: Question, *, open_too: bool = False) -> Any:
    """``touched`` as a query (one column: the ticket ids, distinct)."""
    tk, c, ev, es = t.tickets.c, t.calls.c, t.evaluations.c, t.escalations.c
    parts: list[Any] = [
        select(c.ticket_id).where(q.within(c.dispatched_at), *q.place(c)),
        select(tk.ticket_id).where(q.within(tk.reported_at), *q.place()),
        select(tk.ticket_id).where(q.within(tk.first_dispatched_at), *q.place()),
        select(tk.ticket_id).where(q.within(tk.closed_at), *q.place()),
        select(ev.ticket_id).where(q.within(ev.at), *q.place(ev)),
        select(es.ticket_id).where(q.within(es.at), *q.place(es)),
    ]
    if open_too:
        parts.append(select(tk.ticket_id).where(tk.ticket_id.in_(open_at(q.as_of, q.street, q.community)),
                                                tk.reported_at <= q.as_of))
    return union(*parts)


def _judge(due: datetime | None, done: datetime | None, at: datetime) -> str | None:
    if due is None:
        return None
    if done is not None and done <= at:
        return "on_time" if done <= due else "late"
    return "overdue" if due < at else "pending"


def _chunks(ids: Sequence[str]) -> Iterator[Sequence[str]]:
    for i in range(0, len(ids), _CHUNK):
        yield ids[i:i + _CHUNK]


def lead_calls(conn: Connection, q: Question) -> dict[tuple[str, str], int]:
    """The period's lead calls per (category, department)."""
    c = t.calls.c
    query = (select(c.category, c.department, func.count()).where(q.within(c.dispatched_at), *q.place(c),
                                                                   c.role == "lead")
             .group_by(c.category, c.department))
    return {(category, dept): int(n) for category, dept, n in conn.execute(query)}


def verdicts(conn: Connection, ids: Sequence[str], as_of: datetime, *, start: datetime | None = None,
             end: datetime | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    """``(ticket_id, deadline) -> {ticket_id, case_no, deadline, department, due, done, verdict}``
    for the tickets ``ids`` as of ``as_of``, the deadlines the period ``[start, end)``'s figures
    judge: calls dispatched in it, the centre's of tickets reported in it, closing of tickets
    first dispatched in it (each by the instant)."""
    tk, c = t.tickets.c, t.calls.c

    def inside(at: datetime | None) -> bool:
        return at is not None and at <= as_of and (start is None or at >= start) and (end is None or at < end)

    out: dict[tuple[str, str], dict[str, Any]] = {}
    case_nos: dict[str, str | None] = {}

    def put(tid: str, deadline: str, department: str, due: Any, done: Any, verdict: str | None) -> None:
        if verdict is not None:
            out[(tid, deadline)] = {"ticket_id": tid, "case_no": case_nos.get(tid), "deadline": deadline,
                                    "department": department, "due": due, "done": done, "verdict": verdict}

    for chunk in _chunks(ids):
        tickets = conn.execute(select(tk.ticket_id, tk.case_no, tk.reported_at, tk.accept_due, tk.accepted_at,
                                      tk.dispatch_due, tk.first_dispatched_at, tk.feedback_due, tk.closed_at,
                                      tk.closed_via, tk.ended_at)
                               .where(tk.ticket_id.in_(chunk), tk.reported_at <= as_of)).all()
        for r in tickets:
            case_nos[r.ticket_id] = r.case_no
            ended = r.ended_at is not None and r.ended_at <= as_of
            closed = r.closed_at if r.closed_at is not None and r.closed_at <= as_of else None
            first_contact = closed is not None and (r.closed_via or "").startswith("first_contact")
            accepted = r.accepted_at if r.accepted_at is not None else (closed if first_contact else None)
            if inside(r.reported_at):
                put(r.ticket_id, "accept", "", r.accept_due, accepted, _judge(r.accept_due, accepted, as_of))
            dispatched = r.first_dispatched_at if r.first_dispatched_at is not None \
                and r.first_dispatched_at <= as_of else None
            verdict = "not_owed" if dispatched is None and ended else _judge(r.dispatch_due, dispatched, as_of)
            if inside(r.reported_at):
                put(r.ticket_id, "dispatch", "", r.dispatch_due, dispatched, verdict)
            if inside(dispatched):
                verdict = "not_owed" if ended and closed is None else _judge(r.feedback_due, closed, as_of)
                put(r.ticket_id, "close", "", r.feedback_due, closed, verdict)
        calls = conn.execute(select(c.ticket_id, c.call_id, c.department, c.role, c.ack_due, c.answer, c.answered_at,
                                    c.handle_due, c.handled_at, c.closed_out_at, c.dispatched_at)
                             .where(c.ticket_id.in_(chunk), c.dispatched_at <= as_of)).all()
        for r in calls:
            if not inside(r.dispatched_at):
                continue
            answered = r.answered_at if r.answered_at is not None and r.answered_at <= as_of else None
            closed_out = r.closed_out_at is not None and r.closed_out_at <= as_of and r.closed_out_at <= r.ack_due
            put(r.ticket_id, f"ack:{r.call_id}", r.department, r.ack_due, answered,
                "not_owed" if closed_out else _judge(r.ack_due, answered, as_of))
            if r.role == "lead" and not (answered is not None and r.answer == "rejected"):
                handled = r.handled_at if r.handled_at is not None and r.handled_at <= as_of else None
                put(r.ticket_id, f"handle:{r.call_id}", r.department, r.handle_due, handled,
                    _judge(r.handle_due, handled, as_of))
    return out
