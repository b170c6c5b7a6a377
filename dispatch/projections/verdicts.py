"""Which tickets a period's figures read, and every deadline's verdict on each of them: what a
what-if (``dispatch.service.whatif``) copies and compares.

``touched``: the tickets behind any row a figure of the period reads (calls dispatched, tickets
reported, first dispatched or closed, evaluations and escalations in it; with ``open_too`` the
tickets open at the instant, for a dashboard's open work), each found through its own time index.

``verdicts``: per ticket and deadline — report-in (``ack:<call>``), handling (``handle:<call>``),
the centre's accept and dispatch, closing (``close``) — the verdict as of the instant, by the
definitions of docs/figures.md: ``on_time``, ``late`` (met after it), ``overdue`` (unmet, past it),
``pending`` (unmet, not yet due) or ``not_owed`` (a call closed out before its report-in deadline,
a ticket that ended without a dispatch or a closing). Judged by the database, so only the
verdicts travel; ``verdict_rows`` gives each one's due time and when it was met too, for the few
tickets a what-if changed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, case, func, literal, not_, null, select, union

from dispatch.projections import tables as t
from dispatch.projections.measures import Question
from dispatch.projections.open_work import open_at

__all__ = ["lead_calls", "touched", "touched_query", "verdict_rows", "verdicts"]

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


def _judge(due: Any, done: Any, at: Any) -> Any:
    """A deadline's verdict as of ``at`` (None: no deadline), in SQL."""
    return case((due.is_(None), null()),
                (and_(done.is_not(None), done <= at), case((done <= due, "on_time"), else_="late")),
                (due < at, "overdue"), else_="pending")


def _by(column: Any, at: Any) -> Any:
    """``column`` if it happened by the instant, else NULL."""
    return case((column <= at, column), else_=null())


def _queries(chunk: Sequence[str], as_of: datetime, start: datetime | None, end: datetime | None,
             details: bool) -> tuple[Any, Any]:
    """The tickets' and the calls' verdicts of ``chunk`` (with ``details`` their due and met times)."""
    tk, c = t.tickets.c, t.calls.c
    at = literal(as_of, t.UtcDateTime())

    def inside(column: Any) -> Any:
        return and_(column.is_not(None), column <= at,
                    *([column >= literal(start, t.UtcDateTime())] if start is not None else []),
                    *([column < literal(end, t.UtcDateTime())] if end is not None else []))

    ended = and_(tk.ended_at.is_not(None), tk.ended_at <= at)
    closed = _by(tk.closed_at, at)
    first_contact = and_(closed.is_not(None), func.coalesce(tk.closed_via, "").startswith("first_contact",
                                                                                          autoescape=True))
    accepted = func.coalesce(tk.accepted_at, case((first_contact, closed), else_=null()), type_=t.UtcDateTime())
    dispatched = _by(tk.first_dispatched_at, at)
    reported = inside(tk.reported_at)
    ticket_verdicts = [
        case((reported, _judge(tk.accept_due, accepted, at)), else_=null()).label("accept"),
        case((not_(reported), null()), (and_(dispatched.is_(None), ended), "not_owed"),
             else_=_judge(tk.dispatch_due, dispatched, at)).label("dispatch"),
        case((not_(inside(dispatched)), null()), (and_(ended, closed.is_(None)), "not_owed"),
             else_=_judge(tk.feedback_due, closed, at)).label("close"),
    ]
    answered = _by(c.answered_at, at)
    closed_out = and_(c.closed_out_at.is_not(None), c.closed_out_at <= at, c.closed_out_at <= c.ack_due)
    owes_handling = and_(c.role == "lead", not_(and_(answered.is_not(None), func.coalesce(c.answer, "") == "rejected")))
    handled = _by(c.handled_at, at)
    call_verdicts = [
        case((closed_out, "not_owed"), else_=_judge(c.ack_due, answered, at)).label("ack"),
        case((owes_handling, _judge(c.handle_due, handled, at)), else_=null()).label("handle"),
    ]
    more_tickets = [tk.case_no, tk.accept_due, accepted, tk.dispatch_due, dispatched, tk.feedback_due, closed] \
        if details else []
    more_calls = [c.department, c.ack_due, answered, c.handle_due, handled] if details else []
    tickets = select(tk.ticket_id, *ticket_verdicts, *more_tickets).where(tk.ticket_id.in_(chunk),
                                                                          tk.reported_at <= at)
    calls = select(c.ticket_id, c.call_id, *call_verdicts, *more_calls).where(c.ticket_id.in_(chunk),
                                                                              inside(c.dispatched_at))
    return tickets, calls


def verdicts(conn: Connection, ids: Sequence[str], as_of: datetime, *, start: datetime | None = None,
             end: datetime | None = None) -> dict[tuple[str, str], str]:
    """``(ticket_id, deadline) -> verdict`` for the tickets ``ids`` as of ``as_of``, the deadlines
    the period ``[start, end)``'s figures judge: calls dispatched in it, the centre's of tickets
    reported in it, closing of tickets first dispatched in it (each by the instant). Judged in
    the database: only the verdicts travel (``verdict_rows`` gives the times too)."""
    out: dict[tuple[str, str], str] = {}
    for chunk in _chunks(ids):
        tickets, calls = _queries(chunk, as_of, start, end, details=False)
        for tid, accept, dispatch, close in conn.execute(tickets):
            for deadline, verdict in (("accept", accept), ("dispatch", dispatch), ("close", close)):
                if verdict is not None:
                    out[(tid, deadline)] = verdict
        for tid, call_id, ack, handle in conn.execute(calls):
            if ack is not None:
                out[(tid, f"ack:{call_id}")] = ack
            if handle is not None:
                out[(tid, f"handle:{call_id}")] = handle
    return out


def verdict_rows(conn: Connection, ids: Sequence[str], as_of: datetime, *, start: datetime | None = None,
                 end: datetime | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    """``verdicts`` with each deadline's ``{ticket_id, case_no, deadline, department, due, done,
    verdict}`` (for the few tickets whose verdicts a what-if changed)."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    case_nos: dict[str, str | None] = {}

    def put(tid: str, deadline: str, department: str, due: Any, done: Any, verdict: str | None) -> None:
        if verdict is not None:
            out[(tid, deadline)] = {"ticket_id": tid, "case_no": case_nos.get(tid), "deadline": deadline,
                                    "department": department, "due": due, "done": done, "verdict": verdict}

    for chunk in _chunks(ids):
        tickets, calls = _queries(chunk, as_of, start, end, details=True)
        for r in conn.execute(tickets):
            tid, accept, dispatch, close, case_no, accept_due, accepted, dispatch_due, dispatched, feedback_due, \
                closed = r
            case_nos[tid] = case_no
            put(tid, "accept", "", accept_due, accepted, accept)
            put(tid, "dispatch", "", dispatch_due, dispatched, dispatch)
            put(tid, "close", "", feedback_due, closed, close)
        for tid, call_id, ack, handle, department, ack_due, answered, handle_due, handled in conn.execute(calls):
            put(tid, f"ack:{call_id}", department, ack_due, answered, ack)
            put(tid, f"handle:{call_id}", department, handle_due, handled, handle)
    return out
