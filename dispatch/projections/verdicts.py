"""Which tickets a period's figures read, and every deadline's verdict on each of them: what a
what-if (``dispatch.service.whatif``) copies and compares.

``touched``: the tickets behind any row a figure of the period reads (calls dispatched, tickets
reported, first dispatched or closed, evaluations and escalations in it; with ``open_too`` the
tickets open at the instant, for a dashboard's open work), each found through its own time index.

``differing_rows``: per ticket and deadline — report-in (``ack:<call>``), handling
(``handle:<call>``), the centre's accept and dispatch, closing (``close``) — the verdict as of the
instant, by the definitions of docs/figures.md: ``on_time``, ``late`` (met after it), ``overdue``
(unmet, past it), ``pending`` (unmet, not yet due) or ``not_owed`` (a call closed out before its
report-in deadline, a ticket that ended without a dispatch or a closing), with its due time and
when it was met, in two sets of tables side by side (a what-if's copy of the live rows and its
scratch read model, one database). Judged by the database, which returns only the tickets and
calls whose verdicts differ between the two.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (Connection, Engine, Table, and_, bindparam, case, func, literal, not_, null, or_, select,
                        union, union_all)

from dispatch.adapters.database import BINARY_RESULTS
from dispatch.projections import tables as t
from dispatch.projections.measures import Question
from dispatch.projections.open_work import open_at
from dispatch.projections.side_by_side import side_by_side

__all__ = ["JUDGED", "changed_derived", "differing_rows", "judged_tables", "lead_calls", "stepped_since", "touched",
           "touched_count", "touched_query", "touches"]

_CHUNK = 500

# the columns a verdict reads (``_queries``): all a copy of the live rows to judge needs
JUDGED = {
    "tickets": ("ticket_id", "case_no", "reported_at", "accepted_at", "first_dispatched_at", "closed_at",
                "closed_via", "ended_at", "accept_due", "dispatch_due", "feedback_due"),
    "calls": ("ticket_id", "call_id", "department", "role", "dispatched_at", "answered_at", "answer",
              "closed_out_at", "handled_at", "ack_due", "handle_due"),
}


def judged_tables(metadata: Any, schema: str) -> tuple[Table, Table]:
    """Tickets and calls of ``JUDGED``'s columns only, in ``schema`` (a query naming another
    column of them fails)."""
    from sqlalchemy import Column

    def narrow(table: Table) -> Table:
        return Table(table.name, metadata, *[Column(c.name, c.type, primary_key=c.primary_key)
                                             for c in table.columns if c.name in JUDGED[table.name]], schema=schema)

    return narrow(t.tickets), narrow(t.calls)


def touched(conn: Connection, q: Question, *, open_too: bool = False) -> list[str]:
    """The ids of the tickets whose rows the figures of ``q`` read."""
    return sorted(set(conn.execute(touched_query(q, open_too=open_too)).scalars()))


# the rows a period's figures read, each (table, its time): their tickets are the ones touched
_TOUCHING = ((t.calls, "dispatched_at"), (t.tickets, "reported_at"), (t.tickets, "first_dispatched_at"),
             (t.tickets, "closed_at"), (t.evaluations, "at"), (t.escalations, "at"))


def _touching(q: Question) -> list[Any]:
    """The ids of the tickets of each of ``_TOUCHING``'s rows in the period: a query each."""
    return [select(table.c.ticket_id).where(q.within(table.c[time]), *q.place(table.c)) for table, time in _TOUCHING]


def touched_query(q: Question, *, open_too: bool = False) -> Any:
    """``touched`` as a query (one column: the ticket ids, distinct)."""
    parts = _touching(q)
    if open_too:
        tk = t.tickets.c
        parts.append(select(tk.ticket_id).where(tk.ticket_id.in_(open_at(q.as_of, q.street, q.community)),
                                                tk.reported_at <= q.as_of))
    return union(*parts)


def touched_count(conn: Connection, q: Question) -> int:
    """How many tickets ``touched`` names, counted by the database without gathering their ids.

    Every row a ticket has is of its place (set at its report, never changed) and of a time at or
    after its report (the ticket refuses a step earlier than its latest but for a department's
    answer, which is none of ``_TOUCHING``'s rows) and at or before its latest step
    (``tickets.last_at``). So the tickets touched are those reported in the period, and of those
    reported before it only the ones with a step in it since (``last_at`` ≥ its start) that have
    a row in it (``touches``: through their keys) — counted, not one id of a quarter's 2.2 M
    rows read from four tables' heaps and grouped (at 1.27 M: 1.8–2.2 s that way, 0.2–0.4 s
    this). The parts' union where a question is limited otherwise (``among``, ``span``)."""
    if q.among is not None or q.span is not None:
        return int(conn.execute(select(func.count()).select_from(union(*_touching(q)).subquery())).scalar() or 0)
    tk = t.tickets.c
    start = q.buckets[0].start if q.buckets else q.start
    reported = select(func.count()).where(q.within(tk.reported_at), *q.place(tk)).scalar_subquery()
    if start is None:  # (every ticket reported by the instant is touched by its report)
        return int(conn.execute(select(reported)).scalar() or 0)
    # (not the history before the period through the time of its reports: ``stepped_since``)
    before = select(func.count()).where(func.coalesce(tk.reported_at, tk.reported_at) < start,
                                        *stepped_since(tk, start), *q.place(tk), touches(q)).scalar_subquery()
    return int(conn.execute(select(reported + before)).scalar() or 0)


def stepped_since(tickets: Any, start: datetime) -> list[Any]:
    """The conditions that a ``tickets`` row (its ``.c``) took a step at or after ``start``: its
    latest one then or later, and — the same, said so that the index of the time it ended finds
    the few open tickets and those ended since — not ended before it (a ticket takes no step after
    its end). A ticket's rows lie between its report and its latest step, so a row at or after
    ``start`` is a ticket's that this holds of (``touched_count``; ``derived.Derived.since``)."""
    return [tickets.last_at >= start, or_(tickets.ended_at.is_(None), tickets.ended_at >= start)]


def touches(q: Question) -> Any:
    """``touched_query``'s tickets as a condition on a ``tickets`` row: each part looked up by the
    ticket (its own rows through their keys), so asking it of a few tickets costs what they do,
    not the period's every row."""
    tk = t.tickets.c

    def part(table: Any, time: str) -> Any:
        c = table.c
        if table is t.tickets:
            return and_(q.within(c[time]), *q.place(c))
        return select(literal(1)).where(c.ticket_id == tk.ticket_id, q.within(c[time]), *q.place(c)).exists()

    return or_(*[part(table, time) for table, time in _TOUCHING])


_IDS: Any = bindparam("ids", expanding=True)


def _ids(ids: Sequence[str]) -> Iterator[dict[str, Sequence[str]]]:
    """``ids`` a chunk at a time, as ``_queries``' parameter."""
    for i in range(0, len(ids), _CHUNK):
        yield {"ids": ids[i:i + _CHUNK]}


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


def _queries(as_of: datetime, start: datetime | None, end: datetime | None,
             tables: tuple[Any, Any] = (t.tickets, t.calls), ids: Any = _IDS) -> tuple[Any, Any]:
    """The tickets' and the calls' verdicts of the tickets ``ids`` (by default ``:ids``, an
    expanding parameter: one statement, compiled once, for every chunk; None: of every ticket
    with a verdict in the period), with their due and met times, from ``tables`` (tickets, calls)."""
    tk, c = tables[0].c, tables[1].c
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
    more_tickets = [tk.case_no, tk.accept_due, accepted, tk.dispatch_due, dispatched, tk.feedback_due, closed]
    more_calls = [c.department, c.ack_due, answered, c.handle_due, handled]
    # (every verdict is NULL but for a ticket reported or first dispatched in the period, a call
    # dispatched in it: of those the period's figures read — ``touched`` — each through its index)
    tickets = select(tk.ticket_id, *ticket_verdicts, *more_tickets).where(
        *([tk.ticket_id.in_(ids), tk.reported_at <= at] if ids is not None
          else [or_(reported, inside(tk.first_dispatched_at))]))
    calls = select(c.ticket_id, c.call_id, *call_verdicts, *more_calls).where(
        *([c.ticket_id.in_(ids)] if ids is not None else []), inside(c.dispatched_at))
    return tickets, calls


def differing_rows(conn: Connection, ids: Sequence[str], as_of: datetime, *, schema: str,
                   start: datetime | None = None, end: datetime | None = None,
                   ) -> tuple[dict[tuple[str, str], dict[str, Any]], dict[tuple[str, str], dict[str, Any]]]:
    """Each deadline of the tickets ``ids`` as ``{ticket_id, case_no, deadline, department, due,
    done, verdict}``, keyed ``(ticket_id, deadline)``, from the tables of the database attached to
    ``conn`` as ``schema`` and from ``conn``'s own — of only the tickets and calls with a verdict
    that differs between the two (or that one of them lacks): a what-if's actual and scratch read
    models compared in one database, no unchanged deadline leaving it."""
    from sqlalchemy import MetaData

    theirs = judged_tables(MetaData(), schema)
    first: dict[tuple[str, str], dict[str, Any]] = {}
    second: dict[tuple[str, str], dict[str, Any]] = {}
    statements = []  # per family (tickets, calls): (width of their side, the differing rows, ours alone)
    for a_query, b_query, (keys, names) in zip(
            _queries(as_of, start, end, theirs), _queries(as_of, start, end),
            ((("ticket_id",), ("accept", "dispatch", "close")), (("ticket_id", "call_id"), ("ack", "handle")))):
        a, b = a_query.subquery(), b_query.subquery()
        on = and_(*(a.c[k] == b.c[k] for k in keys))
        differs = or_(b.c[keys[0]].is_(None), *(a.c[n].is_distinct_from(b.c[n]) for n in names))
        statements.append((len(a.c), select(a, b).select_from(a.outerjoin(b, on)).where(differs),
                           select(b).select_from(b.outerjoin(a, on)).where(a.c[keys[0]].is_(None))))
    for chunk in _ids(ids):
        found: list[tuple[list[Any], list[Any]]] = []  # (their rows, our rows) of tickets, then of calls
        for width, pairs, alone in statements:
            rows, lonely = conn.execute(pairs, chunk).all(), conn.execute(alone, chunk).all()
            found.append(([r[:width] for r in rows],
                          [r[width:] for r in rows if r[width] is not None] + [tuple(r) for r in lonely]))
        named = {r[0] for side in found[1] for r in side}  # the tickets of the calls that differ: their numbers
        case_nos: dict[str, str | None] = {tid: no for tid, no in conn.execute(
            select(t.tickets.c.ticket_id, t.tickets.c.case_no).where(t.tickets.c.ticket_id.in_(sorted(named))))
        } if named else {}
        _detailed(first, found[0][0], found[1][0], dict(case_nos))
        _detailed(second, found[0][1], found[1][1], dict(case_nos))
    return first, second


# where each deadline's verdict, due and met times sit in ``_queries``' rows: (name, verdict, due, done)
_TICKET_DEADLINES = (("accept", 1, 5, 6), ("dispatch", 2, 7, 8), ("close", 3, 9, 10))
_CALL_DEADLINES = (("ack", 2, 5, 6), ("handle", 3, 7, 8))


def changed_derived(conn: Connection, q: Question, derived: Any, engine: Engine | None = None) -> list[Any]:
    """The deadlines of the tickets behind ``q``'s figures (``touched``: those with a verdict in
    its period, in its place) whose verdict differs between the live rows and the same rows as
    ``derived`` (``projections.derived.Derived``) works them out, as ``(ticket_id, case_no,
    deadline, department or None, due, due there, done, verdict, verdict there)`` — a side
    without a verdict gives None for its due, its verdict (and the done time is the other's).
    Each family one statement in the live database, every row judged both ways in one pass; given
    the ``engine``, the families side by side (``side_by_side``)."""
    from sqlalchemy import DateTime, type_coerce

    def utc(columns: Any) -> list[Any]:  # times made aware by the driver (the session's zone UTC: ``read``),
        # not one by one here (660,000 of them in a quarter at 1.27 M: 0.6 s)
        return [type_coerce(func.timezone("UTC", col), DateTime(timezone=True)) if isinstance(col.type, t.UtcDateTime)
                else col for col in columns]

    sides = [(derived.side(t.tickets, was=True), derived.side(t.calls, was=True)),
             (derived.side(t.tickets), derived.side(t.calls))]
    was, now = (_queries(q.as_of, q.start, q.end, side, None) for side in sides)

    def family(a: Any, b: Any, names: tuple[str, ...], place: Any, calls: bool) -> Callable[[Connection], Any]:
        a_cols, b_cols = utc(a.selected_columns), utc(b.selected_columns)
        differs = or_(*(a.selected_columns[n].is_distinct_from(b.selected_columns[n]) for n in names))
        number = [derived.case_no()] if calls else []  # a call's row with its ticket's number
        # the rows that differ, once (MATERIALIZED: each deadline's part below reads them, not the
        # statement again), then one row per deadline whose verdict differs, as returned: the
        # database unpivots a quarter's 209,636 calls of two dozen columns into 223,021 rows of
        # nine, not this process (fetching, rows and shaping 1.7 → 1.1 CPU-s under a profiler)
        rows = select(*[c.label(f"a{i}") for i, c in enumerate(a_cols)],
                      *[c.label(f"b{i}") for i, c in enumerate(b_cols)], *[n.label("no") for n in number]) \
            .where(a.whereclause, differs, *q.place(place.c)).cte(f"wi_{'calls' if calls else 'tickets'}_differ") \
            .prefix_with("MATERIALIZED")
        r = rows.c
        case_no = r.no if calls else r.a4
        department = func.nullif(r.a4, "") if calls else null()
        parts = []
        for name, verdict, due, done in _CALL_DEADLINES if calls else _TICKET_DEADLINES:
            mine, theirs = r[f"a{verdict}"], r[f"b{verdict}"]
            deadline = literal(f"{name}:") + r.a1 if calls else literal(name)
            parts.append(select(r.a0, case_no, deadline, department,
                                case((mine.is_not(None), r[f"a{due}"]), else_=null()),
                                case((theirs.is_not(None), r[f"b{due}"]), else_=null()),
                                case((mine.is_not(None), r[f"a{done}"]), else_=r[f"b{done}"]), mine, theirs)
                         .where(mine.is_distinct_from(theirs)))
        statement = union_all(*parts).execution_options(**{BINARY_RESULTS: True})  # (times: 8 bytes, not text)

        def read(on: Connection) -> list[Any]:
            on.exec_driver_sql("SET LOCAL TIME ZONE 'UTC'")  # (until the transaction ends)
            return list(on.execute(statement).all())  # (fetched at once: row by row costs twice as much)
        return read

    readers = {"calls": family(was[1], now[1], ("ack", "handle"), sides[0][1], True),  # the dearer first
               "tickets": family(was[0], now[0], ("accept", "dispatch", "close"), sides[0][0], False)}
    got = side_by_side(engine, conn, readers) if engine is not None else {k: read(conn) for k, read in readers.items()}
    return got["tickets"] + got["calls"]  # (the tickets' deadlines first, as before)


def _detailed(out: dict[tuple[str, str], dict[str, Any]], tickets: Any, calls: Any,
              case_nos: dict[str, str | None] | None = None) -> None:
    """The rows of ``_queries`` as ``differing_rows`` gives them, into ``out``
    (``case_nos``: the tickets' numbers, where their rows are not among ``tickets``)."""
    case_nos = {} if case_nos is None else case_nos

    def put(tid: str, deadline: str, department: str, due: Any, done: Any, verdict: str | None) -> None:
        if verdict is not None:
            out[(tid, deadline)] = {"ticket_id": tid, "case_no": case_nos.get(tid), "deadline": deadline,
                                    "department": department, "due": due, "done": done, "verdict": verdict}

    for r in tickets:
        tid, accept, dispatch, close, case_no, accept_due, accepted, dispatch_due, dispatched, feedback_due, closed = r
        case_nos[tid] = case_no
        put(tid, "accept", "", accept_due, accepted, accept)
        put(tid, "dispatch", "", dispatch_due, dispatched, dispatch)
        put(tid, "close", "", feedback_due, closed, close)
    for tid, call_id, ack, handle, department, ack_due, answered, handle_due, handled in calls:
        put(tid, f"ack:{call_id}", department, ack_due, answered, ack)
        put(tid, f"handle:{call_id}", department, handle_due, handled, handle)
