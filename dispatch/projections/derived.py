"""The live ``tickets`` and ``calls`` as other rules would have them, worked out by the database
(PostgreSQL): a what-if's SLA question asked of the live read model, nothing copied.

A ticket whose deadlines never moved (``tickets.deadline_moves`` = 0: no extension, no hold) has
each deadline the rules gave at its report (accept, dispatch) or at a dispatch (report-in,
handling, feedback), and each call's minutes to report in and to handle counted in its rule's
time basis — what ``dispatch.service.whatif.recompute`` works out row by row in Python. Here the
database does, in the statement that asks the question:

- **the rules**: each (category, priority)'s rule (``Reference.sla_rule``: the most specific) as
  a ``VALUES`` list, joined on the ticket's category and priority;
- **the working calendar**: the local days of the question's span as bound ``bigint[]`` arrays
  read by subscript (constant time, no join) — each day's place ``j`` among the working days (a
  day off: the next working day's), whether it is one, and its periods' starts in microseconds
  since the epoch — and the working days' periods by place. When every working day has the same
  periods' lengths (the same working hours, no clock change: ``Calendar.of`` checks; else None
  and the what-if goes its Python way) the working time before an instant is
  ``W(t) = j·L + (the day's periods' µs before t)``; the working minutes between two instants
  ``(W(b) − W(a)) / 6·10⁷``; the instant N working minutes after ``t`` lies on working day
  ``k = ⌊(W(t) + N·6·10⁷ − 1) / L⌋``, ``W(t) + N·6·10⁷ − k·L`` µs into its working time (a
  deadline that uses up a period ends at its end, as ``BusinessCalendar.add_minutes``). Integers
  of microseconds throughout, as ``BusinessCalendar`` counts in ``timedelta``: the same instants,
  and the same floats (one division of the same integer). Each row's times in µs and ``W`` are
  worked out once, in lateral subqueries;
- **no working time**: the time plus N minutes; minutes ``µs / 10⁶ / 60``, as ``CalendarTime``;
- **the tickets whose deadlines moved** (``Derived.moved``): their rows as their rewritten events
  make them (``whatif.rewrite``, projected), one bound array per column ``unnest``-ed beside the
  rows, taken instead of the arithmetic.

The days cover the question's span (its start, or the first report, to its instant, or to the
latest dispatch of a ticket first dispatched in it) and as many working days after it as the
longest rule needs: every deadline or minute a figure or a verdict of the question reads starts
in that span, and a time after the instant counts for nothing (an answer after it is no answer
as of it). ``Derived.adapt`` points a ``measures`` statement at the derived rows
(``measures.Question.adapt``): every column of ``tickets`` and ``calls`` (and of their aliases)
becomes the same-named column of a subquery that passes the others through unchanged; ``side``
gives a verdict query (``verdicts.changed_derived``) a row's columns as they are and as the rules
would have them, from the one subquery.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy import (BigInteger, Boolean, Date, Float, Integer, String, Time, and_, case, cast, column, func,
                        literal, literal_column, null, select, true, values)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import ColumnClause, Grouping
from sqlalchemy.sql.selectable import Alias
from sqlalchemy.sql.visitors import replacement_traverse

from dispatch.projections import tables as t
from dispatch.projections.verdicts import stepped_since

__all__ = ["Calendar", "Derived"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_US = timedelta(microseconds=1)
_MINUTE_US = 60_000_000
_CALL_DEADLINES = ("ack", "handle", "feedback")
_TICKET_DEADLINES = ("accept", "dispatch", "feedback")


def _us(at: datetime) -> int:
    return (at - _EPOCH) // _US


@dataclass(frozen=True)
class Calendar:
    """A ``BusinessCalendar``'s days as the database reads them (``of``)."""

    tz: str
    lengths: tuple[int, ...]  # each period's µs, the same every working day
    days: list[tuple[Any, ...]]  # (local day, place j, working, *period starts µs or NULLs)
    working: list[tuple[Any, ...]]  # (place j, *period starts µs)
    offset: timedelta | None = None  # the zone's offset from UTC, if it is the one at every midnight of the days

    @property
    def length(self) -> int:
        return sum(self.lengths)

    @classmethod
    def of(cls, calendar: Any, first: date, last: date, most_minutes: int) -> Calendar | None:
        """The days ``first`` … ``last`` of ``calendar`` and after them enough working days for
        ``most_minutes`` working minutes; None if its working days differ in their periods'
        lengths (or it has none)."""
        periods: list[tuple[date, tuple[tuple[datetime, datetime], ...]]] = []
        lengths: tuple[int, ...] | None = None
        day, after, needed = first, 0, None
        while needed is None or after < needed:
            found = calendar.working_periods(day)
            if found:
                mine = tuple((e - s) // _US for s, e in found)
                if lengths is None:
                    lengths = mine
                elif mine != lengths:
                    return None
            periods.append((day, found))
            if day > last and found:
                after += 1
            if day >= last and needed is None:
                if lengths is None:
                    if (day - first).days > 3660:
                        return None  # no working day in ten years
                else:
                    needed = -(-most_minutes * _MINUTE_US // sum(lengths)) + 2
            day += timedelta(days=1)
        assert lengths is not None
        days: list[tuple[Any, ...]] = []
        working: list[tuple[Any, ...]] = []
        place = 0
        waiting: list[date] = []  # days off before the next working day
        blank = (None,) * len(lengths)
        for day, found in periods:
            if not found:
                waiting.append(day)
                continue
            for off in waiting:
                days.append((off, place, False, *blank))
            waiting = []
            starts = tuple(_us(s) for s, _ in found)
            days.append((day, place, True, *starts))
            working.append((place, *starts))
            place += 1
        for off in waiting:  # (after the last working day listed: never asked)
            days.append((off, place, False, *blank))
        offsets = {datetime.combine(first + timedelta(days=n), time(), tzinfo=calendar.tz).utcoffset()
                   for n in range(-1, (days[-1][0] - first).days + 3)}
        return cls(str(calendar.tz.key), lengths, days, working, offsets.pop() if len(offsets) == 1 else None)


@dataclass
class Derived:
    """The rows of ``tickets`` and ``calls`` under ``reference``'s rules (as the module says)."""

    reference: Any
    calendar: Calendar
    # the rows of tickets whose deadlines moved (an extension, a hold), as their rewritten events
    # made them: ``{"tickets": [row, …], "calls": [row, …]}``, each row ``MOVED``'s columns
    moved: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # the earliest dispatch a question of these rows reads (None: any): the calls' tickets are then
    # read among those with a step since (``verdicts.stepped_since``: a call lies between its
    # ticket's report and latest step) — not the whole history hashed for each call's category and
    # priority (1.27 M → 0.33 M tickets)
    since: datetime | None = None
    _made: dict[Any, Any] = field(default_factory=dict)
    # (a what-if asks its figures and its verdicts in two threads: each subquery made once, or a
    # statement could take its columns from one and its FROM from another)
    _making: threading.RLock = field(default_factory=threading.RLock)

    def _moved(self, table: Any) -> Any:
        """``moved``'s rows of ``table`` as a table (one array per column, ``unnest``), or None."""
        rows = self.moved.get(table.name) or []
        if not rows:
            return None
        columns = MOVED[table.name]
        arrays = [literal([row[name] for row in rows], ARRAY(table.c[name].type)) for name in columns]
        return func.unnest(*arrays).table_valued(*columns).render_derived(name=f"wi_moved_{table.name}")

    def _chosen(self, table: Any, joined: Any, new: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """``joined`` with the moved tickets' rows of ``table`` beside it, and ``new``'s values
        theirs where they have a row."""
        moved = self._moved(table)
        if moved is None:
            return joined, new
        keys = [k for k in ("ticket_id", "call_id") if k in MOVED[table.name]]
        joined = joined.outerjoin(moved, and_(*(moved.c[k] == table.c[k] for k in keys)))
        return joined, {name: case((moved.c.ticket_id.is_not(None), moved.c[name]), else_=value)
                        for name, value in new.items()}

    def _rules(self) -> Any:
        ref = self.reference
        rows = []
        for cid in ref.categories:
            for pid in ref.priorities:
                r = ref.sla_rule(cid, pid)
                rows.append((cid, pid, r.time_basis == "working", r.ack_minutes, r.handle_minutes, r.feedback_minutes,
                             r.accept_minutes, r.dispatch_minutes, r.time_basis, r.escalate_every_minutes))
        return values(column("category", String), column("priority", String), column("working", Boolean),
                      *[column(f"{n}_minutes", Integer) for n in ("ack", "handle", "feedback", "accept", "dispatch")],
                      column("basis", String), column("escalate", Integer), name="wi_rules").data(rows)

    def _array(self, name: str) -> Any:
        """One of the calendar's lists as a bound ``bigint[]`` (a row's value read by subscript,
        1-based): per local day from the first (``j``: its place among the working days, the next
        working day's for a day off; ``w``: 1 for a working day; ``s<i>``: its periods' starts, 0 on
        a day off), per working day by place (``p<i>``: its periods' starts). No NULL in them: a
        subscript of an array without NULLs is read in constant time."""
        with self._making:
            return self._array_made(name)

    def _array_made(self, name: str) -> Any:
        if name not in self._made:
            cal = self.calendar
            if name == "j":
                found = [row[1] for row in cal.days]
            elif name == "w":
                found = [int(row[2]) for row in cal.days]
            elif name.startswith("s"):
                found = [row[3 + int(name[1:])] or 0 for row in cal.days]
            else:
                found = [row[1 + int(name[1:])] for row in cal.working]
            self._made[name] = Grouping(literal(found, ARRAY(BigInteger)))  # ((…)::BIGINT[])[i]
        return self._made[name]

    # -- the arithmetic ----------------------------------------------------------------------------

    def _day(self, at: Any) -> Any:
        """The subscript of ``at``'s local day in the days' arrays."""
        # (the read model's times are UTC without a zone: shifted by the zone's one offset over the
        # span, else made UTC, then the place's local time — 2.5 times as dear)
        offset = self.calendar.offset
        local = cast(at + literal(offset), Date) if offset is not None else \
            cast(func.timezone(self.calendar.tz, func.timezone("UTC", at)), Date)
        return local - literal(self.calendar.days[0][0], Date) + literal_column("1")

    @staticmethod
    def _micros(at: Any) -> Any:
        """µs since the epoch of a time (UTC, without a zone), exactly: its day's and its µs into
        the day (a float of at most 8.64·10¹⁰ µs, within 10⁻⁴ of the integer it rounds to) — the
        epoch's seconds as a ``numeric`` times 10⁶ cost four times as much."""
        days = cast(cast(at, Date) - literal(_EPOCH.date(), Date), BigInteger)
        into = cast(func.round(func.date_part(literal_column("'epoch'"), cast(at, Time)) * literal(1e6, Float)),
                    BigInteger)
        return days * _big(86_400_000_000) + into

    def _once(self, table: Any, names: Any) -> Any:
        """``W(t)`` of the times ``names`` of ``table``'s row (``w_<name>``, µs of working time before
        it) and each in µs since the epoch (``u_<name>``), worked out once a row: lateral subqueries
        on the nullable side of an outer join, whose values PostgreSQL keeps as placeholders (an
        expression written out is worked out again at each use)."""
        first = select(*[self._micros(table.c[f"{name}_at"]).label(f"u_{name}") for name in names],
                       *[self._day(table.c[f"{name}_at"]).label(f"i_{name}") for name in names]
                       ).correlate(table).lateral(f"wi_{table.name}_days")
        worked = []
        for name in names:
            u, i = first.c[f"u_{name}"], first.c[f"i_{name}"]
            inside = [func.greatest(_big(0), func.least(u - self._array(f"s{k}")[i], _big(length)))
                      for k, length in enumerate(self.calendar.lengths)]
            worked.append((self._array("j")[i] * _big(self.calendar.length)
                           + case((self._array("w")[i] == _big(1), sum(inside[1:], inside[0])), else_=_big(0))
                           ).label(f"w_{name}"))
        second = select(*[first.c[f"u_{name}"] for name in names], *worked).correlate(first).lateral(
            f"wi_{table.name}_worked")
        return first, second

    def _after(self, worked: Any, minutes: Any) -> Any:
        """The instant ``minutes`` working minutes after the one worked ``worked`` µs: on working
        day ``k`` (its place), ``into`` µs into its working time."""
        target = worked + cast(minutes, BigInteger) * _big(_MINUTE_US)
        k = (target - _big(1)) // _big(self.calendar.length)
        into = target - k * _big(self.calendar.length)
        parts, before = [], 0
        for i, length in enumerate(self.calendar.lengths):
            parts.append((into <= _big(before + length), self._array(f"p{i}")[cast(k + _big(1), Integer)]
                          + (into - _big(before))))
            before += length
        return _instant(case(*parts))

    def _deadline(self, at: Any, rule: Any, name: str, worked: Any) -> Any:
        minutes = rule.c[f"{name}_minutes"]
        plain = at + minutes * literal(timedelta(minutes=1))
        # (a rule's minutes are positive: ``reference``)
        return case((at.is_(None), null()), (rule.c.working, self._after(worked, minutes)), else_=plain)

    def _minutes(self, rule: Any, start: Any, end: Any, times: Any, names: tuple[str, str]) -> Any:
        (a, b) = names
        plain = cast(times.c[f"u_{b}"] - times.c[f"u_{a}"], Float) / literal(1e6, Float) / literal(60.0, Float)
        working = cast(times.c[f"w_{b}"] - times.c[f"w_{a}"], Float) / literal(float(_MINUTE_US), Float)
        return case((and_(start.is_not(None), end.is_not(None)), case((rule.c.working, working), else_=plain)),
                    else_=null())

    # -- the rows -----------------------------------------------------------------------------------

    def calls(self) -> Any:
        """``calls``' columns, their deadlines, basis and minutes under the rules."""
        c, tk = t.calls, t.tickets.alias("wi_ticket")
        rule = self._rules().alias("wi_rule")
        first, times = self._once(c, ("dispatched", "answered", "handled"))
        recent = [] if self.since is None else stepped_since(tk.c, self.since)
        joined = c.join(tk, and_(tk.c.ticket_id == c.c.ticket_id, *recent)).outerjoin(first, true()) \
            .outerjoin(times, true()) \
            .outerjoin(rule, and_(rule.c.category == tk.c.category, rule.c.priority == tk.c.priority))
        at = c.c.dispatched_at
        due = {name: self._deadline(at, rule, name, times.c.w_dispatched) for name in _CALL_DEADLINES}
        lead = c.c.role == "lead"
        found = rule.c.basis.is_not(None)  # (a ticket of a category or priority the rules lack: as it was)
        new = {"ack_due": due["ack"], "handle_due": case((lead, due["handle"]), else_=null()),
               "feedback_due": case((lead, due["feedback"]), else_=null()),
               "time_basis": rule.c.basis, "escalate_every_minutes": rule.c.escalate,
               "ack_minutes": self._minutes(rule, at, c.c.answered_at, times, ("dispatched", "answered")),
               "handle_minutes": self._minutes(rule, at, c.c.handled_at, times, ("dispatched", "handled"))}
        joined, new = self._chosen(c, joined, {name: case((found, value), else_=c.c[name])
                                               for name, value in new.items()})
        return select(*[new[col.name].label(col.name) if col.name in new else col
                        for col in c.columns], *_was(c, new), tk.c.case_no.label("wi_case_no")).select_from(joined)

    def tickets(self) -> Any:
        """``tickets``' columns, the centre's deadlines and the current dispatch's feedback under the rules."""
        tk = t.tickets
        rule = self._rules().alias("wi_rule")
        first, times = self._once(tk, ("reported", "dispatched"))
        starts = {"accept": "reported", "dispatch": "reported", "feedback": "dispatched"}
        joined = tk.outerjoin(first, true()).outerjoin(times, true()).outerjoin(
            rule, and_(rule.c.category == tk.c.category, rule.c.priority == tk.c.priority))
        due = {name: self._deadline(tk.c[f"{starts[name]}_at"], rule, name, times.c[f"w_{starts[name]}"])
               for name in _TICKET_DEADLINES}
        centre = and_(rule.c.basis.is_not(None), tk.c.accept_due.is_not(None))  # none: reported before them
        dispatched = and_(rule.c.basis.is_not(None), tk.c.dispatch_no > 0, tk.c.dispatched_at.is_not(None))
        new = {"accept_due": case((centre, due["accept"]), else_=tk.c.accept_due),
               "dispatch_due": case((centre, due["dispatch"]), else_=tk.c.dispatch_due),
               "centre_basis": case((centre, rule.c.basis), else_=tk.c.centre_basis),
               "feedback_due": case((dispatched, due["feedback"]), else_=tk.c.feedback_due),
               "time_basis": case((dispatched, rule.c.basis), else_=tk.c.time_basis)}
        joined, new = self._chosen(tk, joined, new)
        return select(*[new[col.name].label(col.name) if col.name in new else col
                        for col in tk.columns], *_was(tk, new)).select_from(joined)

    def table(self, table: Any, name: str | None = None) -> Any:
        """The derived rows of ``table`` (tickets or calls) as a subquery named ``name`` (the
        table's by default), made once."""
        key = (table.name, name or table.name)
        with self._making:
            if key not in self._made:
                made = self.calls() if table is t.calls else self.tickets()
                self._made[key] = made.subquery(key[1])
            return self._made[key]

    def case_no(self) -> Any:
        """The derived calls' column of their ticket's case number."""
        return self.table(t.calls).c.wi_case_no

    def side(self, table: Any, *, was: bool = False) -> Any:
        """The derived rows of ``table`` (tickets or calls) as what a query builder reads of a
        table (``.c.<column>``): as the rules would have them, or as they are (``was``) — both
        from the one subquery (``table``), so a statement may judge a row both ways in one pass."""
        from types import SimpleNamespace

        sub = self.table(table)
        names = {col.name: (f"was_{col.name}" if was and f"was_{col.name}" in sub.c else col.name)
                 for col in table.columns}
        return SimpleNamespace(c=SimpleNamespace(**{name: sub.c[found] for name, found in names.items()}))

    def adapt(self, statement: Any) -> Any:
        """``statement`` asked of the derived rows: ``tickets``, ``calls`` and their aliases, and
        their columns, replaced by the derived subqueries' (``measures.Question.adapt``)."""
        mine = (t.tickets, t.calls)

        def source(element: Any) -> Any:
            if element is t.tickets or element is t.calls:
                return self.table(element)
            if isinstance(element, Alias) and element.element in mine:
                return self.table(element.element, element.name)
            return None

        def replace(element: Any, **kw: Any) -> Any:
            found = source(element)
            if found is not None:
                return found
            table = getattr(element, "table", None)
            if isinstance(element, ColumnClause) and table is not None:
                derived = source(table)
                if derived is not None:
                    return derived.c[element.name]
            return None

        opts: dict[str, Any] = {}
        return replacement_traverse(statement, opts, replace)


# the columns the rules change, by table: what ``Derived.moved`` gives of a moved ticket's rows
MOVED = {
    "calls": ("ticket_id", "call_id", "ack_due", "handle_due", "feedback_due", "time_basis", "escalate_every_minutes",
              "ack_minutes", "handle_minutes"),
    "tickets": ("ticket_id", "accept_due", "dispatch_due", "centre_basis", "feedback_due", "time_basis"),
}


def _was(table: Any, new: dict[str, Any]) -> list[Any]:
    """The columns the rules change, as they are, named ``was_<column>``."""
    return [table.c[name].label(f"was_{name}") for name in new]


def _big(n: int) -> Any:
    return literal(n, BigInteger)


def _instant(micros: Any) -> Any:
    """µs since the epoch as a ``timestamptz`` (exact: an interval times an integer below 2⁵³)."""
    return literal(_EPOCH, t.UtcDateTime()) + micros * literal(_US)
