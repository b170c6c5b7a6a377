"""The figures of docs/figures.md computed in the database, grouped by unit and period.

Each family of figures is one aggregate query over one fact table, driven by that table's own
time index over the period asked, so its cost follows the question, not the history before it:

- calls dispatched in the period (report-in and handling figures, MTTA/MTTH),
- tickets first dispatched in the period (on-time closing),
- tickets reported in the period (the centre's on-time rates, first contact, dashboards' counts),
- evaluations in the period (三率, reopen rate), tickets closed and escalations in the period.

"As of T" is a filter on each row's own times (a call answered after T is unanswered here, an
evaluation after T is absent), exactly as a rebuild with ``until=T`` would have it. Rates are
formed from the summed counts (``dispatch.projections.figures``); percentiles are nearest-rank,
exact: ``percentile_disc`` on PostgreSQL, a ranked window on SQLite. Minutes are those the
projection stored in each call's time basis (``dispatch.projections.durations``).

Every group is ``(key, bucket)``: the unit (a department, category, place) and the index of the
period bucket (day/week/month; 0 without ``--period``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, case, func, literal, literal_column, not_, or_, select, tuple_
from sqlalchemy.sql.elements import ColumnElement

from dispatch.adapters.database import BINARY_RESULTS, UtcDateTime
from dispatch.domain.lifecycle import FIRST_CONTACT_MODES, SATISFACTION
from dispatch.projections import tables as t
from dispatch.projections.figures import Window

__all__ = ["ALL_ROLES", "METRICS", "Question", "Group", "asked", "call_counts", "call_counts_and_minutes", "first_activity", "keys_of",
           "centre_counts", "close_counts", "closed_counts", "escalation_counts", "evaluation_counts", "minute_values",
           "nearest_rank", "percentiles", "ranks", "previous_evaluation", "reported_counts", "statement", "template"]

Group = tuple[str, int]  # (unit, bucket)
_K, _B = "g_key", "g_bucket"  # output names the GROUP BY refers to (distinct from any column's)


def _one() -> ColumnElement[Any]:
    return literal_column("1")


def _zero() -> ColumnElement[Any]:
    return literal_column("0")


def _count(condition: ColumnElement[bool]) -> Any:
    return func.sum(case((condition, _one()), else_=_zero()))


def _sum(condition: ColumnElement[bool], value: Any) -> Any:
    return func.sum(case((condition, value), else_=None))


@dataclass(frozen=True)
class Question:
    """The instant, the period ``[start, end)``, its buckets (consecutive windows covering it;
    none: the period is one bucket) and the place the tickets must be in."""

    as_of: datetime
    start: datetime | None = None
    end: datetime | None = None
    buckets: tuple[Window, ...] = ()
    street: str | None = None
    community: str | None = None
    span: Window | None = None  # only this part of the period (the rest read from rollups)
    # only the rows this admits: ``among(ticket_id column, time column) -> condition`` (rollups)
    among: Any = None
    # groups by the ticket instead of by a time bucket: ``classes(ticket_id column) -> integer``
    # (rollups: the day a ticket settled, as days after the one rolled up)
    classes: Any = None
    # each statement as asked of other tables: ``adapt(statement) -> statement`` (a what-if's
    # deadlines worked out by the database: ``projections.derived``)
    adapt: Any = None
    # ``reached()`` as worked out on the question a template stands for (``template``)
    reach: tuple[int, int] | None = None

    def within(self, column: Any, *, by_place: bool = False) -> ColumnElement[bool]:
        """``column`` in the period (and its buckets; in ``span`` if given) and at or before the
        instant. ``by_place``, for a table with a (place, time) index: for a question of one
        street or community the time's bounds are written on (place, time) pairs, which that
        index serves and the time's own index cannot — else a planner may read the whole
        district's period through the time index and keep the place's rows (a street's month of
        calls on PostgreSQL: 173 ms that way, 36 ms through (street, time))."""
        lo = self.buckets[0].start if self.buckets else self.start
        hi = self.buckets[-1].end if self.buckets else self.end
        if self.span is not None:
            lo, hi = self.span.start, self.span.end
        unit = (self.community if self.community is not None else self.street) if by_place else None
        cols = column.table.c
        at = column if unit is None else tuple_(cols.community if self.community is not None else cols.street, column)

        def bound(value: Any) -> Any:
            return value if unit is None else tuple_(literal(unit), literal(value, column.type))

        parts = [at <= bound(self.as_of)]
        if self.among is not None:
            parts.append(self.among(column.table.c.ticket_id, column))
        if lo is not None:
            parts.append(at >= bound(lo))
        if hi is not None:
            parts.append(at < bound(hi))
        return and_(*parts)

    @property
    def bucketed(self) -> bool:
        return len(self.buckets) > 1 or self.classes is not None

    def reached(self) -> tuple[int, int]:
        """The first and the last bucket a row of the question may fall in: all of them, or those
        its ``span`` overlaps (a quarter's last days read raw fall in its last week alone)."""
        if self.reach is not None:
            return self.reach
        last = len(self.buckets) - 1
        if self.span is None or last <= 0:
            return 0, max(last, 0)
        lo, hi = self.span.start, self.span.end
        ends = [w.end for w in self.buckets[:-1]]
        first = next((i for i, end in enumerate(ends) if lo is None or end is None or end > lo), last)
        return first, next((i for i, end in enumerate(ends) if hi is not None and end is not None and end >= hi), last)

    def bucket(self, column: Any) -> ColumnElement[Any]:
        """A row's bucket, by ``column``'s time: the index of the first bucket ending after it,
        written over the buckets its rows may reach alone (``reached``) — one of them: a
        constant, and the database groups the rows by their key only."""
        if self.classes is not None:
            return self.classes(column.table.c.ticket_id)  # type: ignore[no-any-return]
        first, last = self.reached()
        if self.one_bucket():
            return literal_column(str(last))
        return case(*[(column < self.buckets[i].end, literal_column(str(i))) for i in range(first, last)],
                    else_=literal_column(str(last)))

    def one_bucket(self) -> bool:
        """Whether its rows all fall in one bucket (``bucket`` is then a constant)."""
        first, last = self.reached()
        return self.classes is None and first >= last

    def place(self, columns: Any = None, *, driving: bool = True) -> list[ColumnElement[bool]]:
        """The place's conditions on ``columns`` (a table's ``.c`` with ``street`` and
        ``community``; ``tickets`` by default). ``driving=False`` when another index drives the
        query: the conditions are then written so that no place index can serve them
        (``street || ''``), or a planner would walk the place's whole history."""
        cols, out = columns if columns is not None else t.tickets.c, []
        if self.street is not None:
            out.append((cols.street if driving else cols.street.concat("")) == self.street)
        if self.community is not None:
            out.append((cols.community if driving else cols.community.concat("")) == self.community)
        return out

    def up_to(self, column: Any) -> ColumnElement[bool]:
        """A time recorded at or before the instant."""
        return and_(column.is_not(None), column <= self.as_of)


def _grouped(q: Question, key: Any, time: Any, *figures: Any) -> Any:
    """``SELECT key, bucket, figures…`` grouped by both (by their output names)."""
    query = select(key.label(_K), q.bucket(time).label(_B), *figures)
    return query.group_by(literal_column(_K), *([literal_column(_B)] if q.bucketed else []))


def _ticket_key(by: str) -> Any:
    return getattr(t.tickets.c, by)


def _rows(conn: Connection, q: Question, query: Any) -> Sequence[Any]:
    return conn.execute(q.adapt(query) if q.adapt is not None else query).all()


# -- statements built once per shape -------------------------------------------------------------------

def template(q: Question) -> tuple[Any, Question, dict[str, Any]] | None:
    """``q`` with each of its times a named parameter: its shape (what decides a statement's
    text: which bounds are open, the buckets a part reaches, the kind of ``among``), the question
    standing for every question of that shape, and ``q``'s values of the parameters. A statement
    built from it serves them all (``asked``): built once, not for every question — building a
    district's quarter's statements cost ~20 ms of Python a question. None: ``q`` is built for
    itself (a place's question, a what-if's, a rollup's own, an ``among`` that is not a
    template)."""
    if q.adapt is not None or q.street is not None or q.community is not None or q.classes is not None:
        return None
    if q.among is not None and not hasattr(q.among, "template"):
        return None
    values: dict[str, Any] = {}

    def param(name: str, value: datetime | None) -> Any:
        if value is None:
            return None
        values[name] = value
        return bindparam(name, type_=UtcDateTime())

    among, among_shape = None, None
    if q.among is not None:
        among_shape, among, more = q.among.template()
        values.update(more)
    like = Question(param("q_as_of", q.as_of), param("q_start", q.start), param("q_end", q.end),
                    tuple(Window(param(f"q_b{i}_start", w.start), param(f"q_b{i}_end", w.end))
                          for i, w in enumerate(q.buckets)),
                    span=None if q.span is None else Window(param("q_lo", q.span.start), param("q_hi", q.span.end)),
                    among=among, reach=q.reached())
    shape = (sorted(values), among_shape, len(q.buckets), q.reached())
    return repr(shape), like, values


_MADE: dict[Any, Any] = {}  # statements by (family, shape); a few dozen shapes in use
_MADE_AT_MOST = 512


def asked(conn: Connection, q: Question, family: Any, build: Callable[[Question], Any]) -> Sequence[Any]:
    """The rows of the statement ``build(q)`` builds, built once per ``family`` (with whatever
    else decides its text: the dimension, the options) and shape of question (``template``) and
    asked with ``q``'s values; built for ``q`` alone where it has no template."""
    made = template(q)
    if made is None:
        return _rows(conn, q, build(q))
    shape, like, values = made
    return conn.execute(statement(conn, (family, shape), lambda: build(like)), values).all()


def statement(conn: Connection, key: Any, build: Callable[[], Any]) -> Any:
    """The statement ``build()`` builds, built once per ``key`` (all that decides its text; its
    values are parameters given when it is asked) and dialect."""
    key = (conn.dialect.name, key)
    query = _MADE.get(key)
    if query is None:
        if len(_MADE) >= _MADE_AT_MOST:
            _MADE.clear()
        query = _MADE[key] = build()
    return query


# -- calls ---------------------------------------------------------------------------------------------

def _calls(q: Question, by: str) -> tuple[Any, list[ColumnElement[bool]]]:
    """The calls of the period: their key and conditions (a call carries its ticket's category
    and place, so neither needs tickets)."""
    c = t.calls.c
    return getattr(c, by), [q.within(c.dispatched_at, by_place=True), *q.place(c)]  # (place, dispatched_at) drives


def _call_terms(q: Question) -> dict[str, ColumnElement[bool]]:
    c, T = t.calls.c, q.as_of
    answered = q.up_to(c.answered_at)
    rejected = and_(answered, c.answer == "rejected")
    # a call closed out before its report-in deadline was never owed (figures.md)
    owed = not_(and_(q.up_to(c.closed_out_at), c.closed_out_at <= c.ack_due))
    lead = and_(c.role == "lead", not_(rejected))
    handled = q.up_to(c.handled_at)
    return {"answered": answered, "rejected": rejected, "owed": owed, "lead": lead, "handled": handled,
            "acknowledged": and_(owed, answered, c.answer == "acknowledged"),
            "ack_waiting_late": and_(owed, not_(answered), c.ack_due < T),
            "handle_overdue": and_(lead, not_(handled), c.handle_due.is_not(None), c.handle_due < T)}


# the role of a group of calls counted together whatever their roles (``roles=False``)
ALL_ROLES = ""


def call_counts(conn: Connection, q: Question, by: str, *, roles: bool = True
                ) -> dict[tuple[str, int, str], dict[str, Any]]:
    """Report-in and handling counts per (key, bucket, role), with the sums of the minutes;
    ``roles=False``: lead and cooperating calls together, under the role ``ALL_ROLES``."""
    return _call_counts(conn, q, by, roles=roles)[0]


def call_counts_and_minutes(conn: Connection, q: Question, by: str, *, roles: bool = True
                            ) -> tuple[dict[tuple[str, int, str], dict[str, Any]], dict[tuple[Group, str], list[float]]]:
    """``call_counts`` and ``minute_values`` of the same calls: on PostgreSQL in one pass (each
    group's minutes gathered by ``array_agg``), on SQLite in two (its arrays would be text, and
    text rounds a float)."""
    if conn.dialect.name != "postgresql":
        return call_counts(conn, q, by, roles=roles), minute_values(conn, q, by)
    return _call_counts(conn, q, by, minutes=True, roles=roles)


def _call_counts(conn: Connection, q: Question, by: str, minutes: bool = False, roles: bool = True
                 ) -> tuple[dict[tuple[str, int, str], dict[str, Any]], dict[tuple[Group, str], list[float]]]:
    """Each call's terms (owed, answered, …) worked out once, in a subquery the planner keeps
    (``OFFSET 0``: pulled up, each term would be worked out again in every count that uses it —
    a district's last days of calls on PostgreSQL, 48 → 40 ms), then counted per group."""
    def build(q: Question) -> Any:
        c = t.calls.c
        key, where = _calls(q, by)
        x, T = _call_terms(q), q.as_of
        bucket = q.bucket(c.dispatched_at)
        # a constant (one bucket reached, no roles) is written in the counting statement itself, not
        # grouped by: a planner would sort by it, not knowing it is one value
        constant = {_B: bucket if q.one_bucket() else None,
                    "g_role": None if roles else literal_column(f"'{ALL_ROLES}'")}
        grouped = [c.role.label("g_role") if name == "g_role" else bucket.label(_B)
                   for name, value in constant.items() if value is None]
        each = select(key.label(_K), *grouped,
                      *[x[name].label(f"is_{name}") for name in ("owed", "answered", "rejected", "lead", "handled")],
                      c.answered_at, c.ack_due, c.answer, c.handled_at, c.handle_due, c.ack_minutes, c.handle_minutes,
                      ).select_from(t.calls).where(*where).offset(0).subquery("each_call")
        e = each.c
        owed, answered, lead, handled = e.is_owed, e.is_answered, e.is_lead, e.is_handled
        acknowledged = and_(owed, answered, e.answer == "acknowledged")
        lead_handled = and_(lead, handled)
        keys = [e[_K], *[e[name] if value is None else value.label(name) for name, value in constant.items()]]
        query = select(*keys,
                       _count(owed).label("dispatched"),
                       _count(and_(owed, answered)).label("answered"),
                       _count(and_(owed, e.is_rejected)).label("rejected"),
                       _count(and_(owed, answered, e.answered_at <= e.ack_due)).label("ack_on_time"),
                       _count(and_(owed, not_(answered), e.ack_due < T)).label("ack_waiting_late"),
                       _count(acknowledged).label("mtta_n"),
                       _sum(acknowledged, e.ack_minutes).label("mtta_sum"),
                       _count(lead).label("lead_calls"),
                       _count(lead_handled).label("handled"),
                       _count(and_(lead_handled, e.handled_at <= e.handle_due)).label("handle_on_time"),
                       _count(and_(lead, not_(handled), e.handle_due.is_not(None), e.handle_due < T)
                              ).label("handle_overdue"),
                       _sum(lead_handled, e.handle_minutes).label("mtth_sum"),
                       *[func.array_agg(values).filter(and_(condition, values.is_not(None))).label(name)
                         for name, condition, values in ((("mtta_minutes", acknowledged, e.ack_minutes),
                                                          ("mtth_minutes", lead_handled, e.handle_minutes))
                                                         if minutes else ())],
                       ).group_by(e[_K], *[e[name] for name, value in constant.items() if value is None])
        if minutes:  # the arrays of minutes in binary, not as digits parsed again
            query = query.execution_options(**{BINARY_RESULTS: True})
        return query

    out: dict[tuple[str, int, str], dict[str, Any]] = {}
    found: dict[tuple[Group, str], list[float]] = defaultdict(list)
    for row in asked(conn, q, ("calls", by, minutes, roles), build):
        m = dict(row._mapping)
        group = (m.pop(_K), int(m.pop(_B)), m.pop("g_role"))
        for name in METRICS if minutes else ():
            if values := m.pop(name):
                found[(group[:2], name)].extend(values)
        out[group] = {k: (v or 0) for k, v in m.items()}
    return out, found


METRICS = ("mtta_minutes", "mtth_minutes")


def _metrics(q: Question) -> tuple[tuple[str, ColumnElement[bool], Any], ...]:
    c, x = t.calls.c, _call_terms(q)
    return (("mtta_minutes", x["acknowledged"], c.ack_minutes),
            ("mtth_minutes", and_(x["lead"], x["handled"]), c.handle_minutes))


def minute_values(conn: Connection, q: Question, by: str) -> dict[tuple[Group, str], list[float]]:
    """The minutes behind the percentiles, per (group, metric): MTTA of acknowledged calls, MTTH
    of handled lead calls, unsorted."""
    def build(q: Question) -> Any:
        metrics = _metrics(q)
        key, where = _calls(q, by)
        return select(key, q.bucket(t.calls.c.dispatched_at),
                      *[case((condition, minutes), else_=None) for _, condition, minutes in metrics]
                      ).select_from(t.calls).where(*where, or_(*[condition for _, condition, _ in metrics]))

    values: dict[tuple[Group, str], list[float]] = defaultdict(list)
    for k, bucket, ack, handle in asked(conn, q, ("minutes", by), build):
        group = (k, int(bucket))
        if ack is not None:
            values[(group, "mtta_minutes")].append(ack)
        if handle is not None:
            values[(group, "mtth_minutes")].append(handle)
    return values


def ranks(n: int) -> tuple[int, int]:
    """Where p50 and p90 sit among ``n`` sorted values (nearest rank: the ⌈p·n⌉-th smallest)."""
    return max(1, math.ceil(0.5 * n)) - 1, max(1, math.ceil(0.9 * n)) - 1


def nearest_rank(ordered: Any, n: int) -> tuple[Any, Any]:
    """p50 and p90 of ``n`` sorted values."""
    k50, k90 = ranks(n)
    return ordered[k50], ordered[k90]


def percentiles(conn: Connection, q: Question, by: str) -> dict[Group, dict[str, float | None]]:
    """Nearest-rank p50/p90 of MTTA (acknowledged calls) and MTTH (handled lead calls) per group:
    ``percentile_disc`` on PostgreSQL (the first value whose cumulative share reaches p: the
    ⌈p·n⌉-th); on SQLite, which has no ordered-set aggregate, the period's minutes are read in
    one pass and ranked here."""
    out: dict[Group, dict[str, float | None]] = defaultdict(dict)
    if conn.dialect.name == "postgresql":  # one pass: each aggregate filtered to its own calls
        def build(q: Question) -> Any:
            metrics = _metrics(q)
            key, where = _calls(q, by)
            aggregates = [func.percentile_disc(p).within_group(minutes).filter(and_(condition, minutes.is_not(None)))
                          .label(f"{name}_p{round(p * 100)}")
                          for name, condition, minutes in metrics for p in (0.5, 0.9)]
            return _grouped(q, key, t.calls.c.dispatched_at, *aggregates).select_from(t.calls).where(
                *where, or_(*[condition for _, condition, _ in metrics]))

        for row in asked(conn, q, ("percentiles", by), build):
            out[(row[0], int(row[1]))].update({k: v for k, v in list(row._mapping.items())[2:]})
        return out
    for (group, name), found in minute_values(conn, q, by).items():
        found.sort()
        out[group][f"{name}_p50"], out[group][f"{name}_p90"] = nearest_rank(found, len(found))
    return out


# -- closing -------------------------------------------------------------------------------------------

def close_counts(conn: Connection, q: Question, by: str) -> dict[Group, dict[str, int]]:
    """按时结案: tickets first dispatched in the period, judged by the feedback deadline of their
    latest dispatch as of the instant; by department, the lead of that dispatch. The ticket row
    holds its current dispatch's; a ticket dispatched again after the instant reads the lead
    call current then (dispatched by then, not superseded by then)."""
    def build(q: Question) -> Any:
        tk, T = t.tickets.c, q.as_of
        then = t.calls.alias("then")
        lc = then.c

        def current_then(column: Any) -> Any:
            # the ticket's few calls by primary key (coalesce: no planner may range over dispatched_at)
            return (select(column).where(lc.ticket_id == tk.ticket_id, lc.role == "lead",
                                         func.coalesce(lc.dispatched_at, lc.dispatched_at) <= T,
                                         or_(lc.superseded_at.is_(None), lc.superseded_at > T))
                    .limit(1).correlate(t.tickets).scalar_subquery())

        recent = tk.dispatched_at <= T
        deadline = case((recent, tk.feedback_due), else_=current_then(lc.feedback_due))
        closed = q.up_to(tk.closed_at)
        ended_otherwise = and_(q.up_to(tk.ended_at), tk.closed_at.is_(None))  # cancelled, a duplicate
        key = case((recent, tk.lead), else_=current_then(lc.department)) if by == "department" else _ticket_key(by)
        query = _grouped(q, key, tk.first_dispatched_at,
                         _count(closed).label("closed_tickets"),
                         _count(and_(closed, tk.closed_at <= deadline)).label("close_on_time"),
                         _count(and_(not_(closed), deadline < T)).label("close_waiting_late"),
                         ).where(q.within(tk.first_dispatched_at), not_(ended_otherwise), *q.place())
        return query

    return {(row[0], int(row[1])): {k: (v or 0) for k, v in list(row._mapping.items())[2:]}
            for row in asked(conn, q, ("closes", by), build)}


# -- tickets reported in the period ----------------------------------------------------------------------

def _state_at(q: Question) -> Any:
    st = t.ticket_states.alias("state_at")
    return (select(st.c.state).where(st.c.ticket_id == t.tickets.c.ticket_id, st.c.at <= q.as_of)
            .order_by(st.c.version.desc()).limit(1).correlate(t.tickets).scalar_subquery())


def centre_counts(conn: Connection, q: Question, by: str, *, detail: bool = False) -> dict[Any, dict[str, int]]:
    """按时立案 / 按时派遣 over the tickets reported in the period (figures.md); with ``detail``
    grouped further by category, channel and how a first-contact closure went (for dashboards)."""
    def build(q: Question) -> Any:
        tk, T = t.tickets.c, q.as_of
        closed = q.up_to(tk.closed_at)
        first_contact = and_(closed, tk.closed_via.like("first_contact%"))
        accepted_at = case((q.up_to(tk.accepted_at), tk.accepted_at), (first_contact, tk.closed_at), else_=None)
        # the status as of the instant is read only for the tickets still waiting past a deadline
        waiting_accept = case((and_(accepted_at.is_(None), tk.accept_due < T), _state_at(q) == "reported"),
                              else_=False)
        dispatched = q.up_to(tk.first_dispatched_at)
        waiting_dispatch = case((and_(not_(dispatched), tk.dispatch_due < T),
                                 _state_at(q).in_(("reported", "accepted"))), else_=False)
        has_accept, has_dispatch = tk.accept_due.is_not(None), tk.dispatch_due.is_not(None)
        figures = [
            func.count().label("reported"),
            _count(and_(has_accept, accepted_at.is_not(None), accepted_at <= tk.accept_due)).label("accept_on_time"),
            _count(and_(has_accept, or_(accepted_at.is_not(None), waiting_accept))).label("accept_judged"),
            _count(and_(has_dispatch, dispatched, tk.first_dispatched_at <= tk.dispatch_due)).label("dispatch_on_time"),
            _count(and_(has_dispatch, or_(dispatched, waiting_dispatch))).label("dispatch_judged"),
        ]
        extra: list[Any] = []
        if detail:
            mode = case((and_(closed, tk.closed_via.like("first_contact:%")), tk.closed_via), else_=None)
            extra = [tk.category.label("g_category"), tk.channel.label("g_channel"), mode.label("g_mode")]
        query = _grouped(q, _ticket_key(by), tk.reported_at, *extra, *figures).where(q.within(tk.reported_at),
                                                                                     *q.place())
        if detail:
            query = query.group_by(literal_column("g_category"), literal_column("g_channel"), literal_column("g_mode"))
        return query

    out: dict[Any, dict[str, int]] = {}
    for row in asked(conn, q, ("centre", by, detail), build):
        m = dict(row._mapping)
        group: Any = (m.pop(_K), int(m.pop(_B)))
        if detail:
            group = (*group, m.pop("g_category"), m.pop("g_channel"), m.pop("g_mode"))
        out[group] = {k: int(v or 0) for k, v in m.items()}
    return out


def closed_counts(conn: Connection, q: Question, by: str) -> dict[Group, int]:
    """Tickets closed (办结) in the period."""
    def build(q: Question) -> Any:
        tk = t.tickets.c
        return _grouped(q, _ticket_key(by), tk.closed_at, func.count()).where(q.within(tk.closed_at), *q.place())
    return {(row[0], int(row[1])): int(row[2]) for row in asked(conn, q, ("closed", by), build)}


def escalation_counts(conn: Connection, q: Question, by: str) -> dict[tuple[str, int, str], int]:
    """Escalations in the period that raised their ticket, per level reached."""
    def build(q: Question) -> Any:
        es = t.escalations.c
        return (_grouped(q, getattr(es, by), es.at, es.to_level.label("g_level"), func.count())
                .where(q.within(es.at), es.from_level != es.to_level, *q.place(es))
                .group_by(literal_column("g_level")))
    return {(row[0], int(row[1]), row[2]): int(row[3]) for row in asked(conn, q, ("escalations", by), build)}


# -- evaluations ---------------------------------------------------------------------------------------

def evaluation_counts(conn: Connection, q: Question, by: str, *, firsts: bool = False) -> dict[Group, dict[str, int]]:
    """三率 over the tickets whose latest evaluation as of the instant is in the period (an
    evaluation is the latest from its time until the ticket's next one, ``next_at``); the reopen
    rate over the tickets evaluated in the period (figures.md). One pass over the period's
    evaluations; with ``firsts``, its distinct tickets counted row by row (``_first_counts``)."""
    def build(q: Question) -> Any:
        ev = t.evaluations.c
        latest = or_(ev.next_at.is_(None), ev.next_at > q.as_of)
        reopened = case((q.up_to(ev.reopened_at), ev.ticket_id), else_=None)
        counts = [_count(latest).label("evaluated"),
                  *[_count(and_(latest, ev.satisfaction == s)).label(s) for s in SATISFACTION],
                  _count(and_(latest, ev.contacted.is_(True))).label("contacted"),
                  _count(and_(latest, ev.resolved.is_(True))).label("resolved"),
                  *(_first_counts(q, by) if firsts else
                    (func.count(func.distinct(ev.ticket_id)).label("tickets_evaluated"),
                     func.count(func.distinct(reopened)).label("reopened")))]
        query = _grouped(q, _evaluation_key(t.evaluations, by), ev.at, *counts).where(q.within(ev.at, by_place=True),
                                                                                      *q.place(ev))
        return query

    return {(row[0], int(row[1])): {k: int(v or 0) for k, v in list(row._mapping.items())[2:]}
            for row in asked(conn, q, ("evaluations", by, firsts), build)}


def _evaluation_key(table: Any, by: str) -> Any:
    return func.coalesce(table.c.department, "") if by == "department" else getattr(table.c, by)


def previous_evaluation(q: Question, by: str, *, reopened: bool = False) -> Any:
    """The time of the ticket's previous evaluation of the same unit (with ``reopened``: the
    previous one reopened by the instant), for each evaluation row: distinct tickets counted
    as the rows with none since the period's (bucket's) start."""
    ev, before = t.evaluations, t.evaluations.alias("before")
    # the unit compared through coalesce: no place index may drive this (the ticket's own rows do)
    conditions = [before.c.ticket_id == ev.c.ticket_id, before.c.version < ev.c.version,
                  func.coalesce(getattr(before.c, by), "") == func.coalesce(getattr(ev.c, by), "")]
    if reopened:
        conditions.append(q.up_to(before.c.reopened_at))
    return select(func.max(before.c.at)).where(*conditions).correlate(ev).scalar_subquery()


def _first_counts(q: Question, by: str) -> tuple[Any, Any]:
    """``tickets_evaluated`` and ``reopened`` (distinct tickets) counted without ``DISTINCT``: a
    row counts when the ticket has no earlier row of the unit in its bucket (so a part of a
    period read raw adds up with the part read from rollups)."""
    ev = t.evaluations.c
    windows = list(q.buckets) or [Window(q.start, q.end)]
    if any(w.start is None for w in windows):
        raise ValueError("distinct tickets counted without DISTINCT need a bounded period")

    lo, hi = q.reached()  # (the buckets a row may fall in, as ``Question.bucket``)

    def first(previous: Any) -> ColumnElement[bool]:  # nothing of the unit since its bucket began
        before = case(*[(ev.at < windows[i].end, previous < windows[i].start) for i in range(lo, hi)],
                      else_=previous < windows[hi].start) if lo < hi else previous < windows[hi].start
        return or_(previous.is_(None), before)

    prev, prev_reopened = previous_evaluation(q, by), previous_evaluation(q, by, reopened=True)
    return (_count(first(prev)).label("tickets_evaluated"),
            _count(and_(q.up_to(ev.reopened_at), first(prev_reopened))).label("reopened"))


def reported_counts(detail: dict[Any, dict[str, int]], group: Group | None) -> dict[str, Any]:
    """A dashboard's counts of the tickets reported in the period, from ``centre_counts(detail=True)``
    rows of ``group`` (of every group when it is None)."""
    categories: dict[str, int] = defaultdict(int)
    channels: dict[str, int] = defaultdict(int)
    modes = {m: 0 for m in FIRST_CONTACT_MODES}
    sums: dict[str, int] = defaultdict(int)
    for (key, bucket, category, channel, mode), counts in detail.items():
        if group is not None and (key, bucket) != group:
            continue
        categories[category] += counts["reported"]
        channels[channel] += counts["reported"]
        if mode is not None:
            name = mode.split(":", 1)[1]
            modes[name] = modes.get(name, 0) + counts["reported"]
        for k, v in counts.items():
            sums[k] += v
    return {"by_category": dict(sorted(categories.items())), "by_channel": dict(sorted(channels.items())),
            "first_contact_by_mode": modes, **sums}


def first_activity(conn: Connection, q: Question) -> datetime | None:
    """The first call dispatched or evaluation made in the place, at or before the instant."""
    c, ev = t.calls.c, t.evaluations.c
    found = []
    for table, column in ((t.calls, c.dispatched_at), (t.evaluations, ev.at)):
        query = select(func.min(column)).select_from(table).where(*q.place(table.c, driving=False))
        found.append(conn.execute(query.where(column <= q.as_of)).scalar())
    times = [f for f in found if f is not None]
    return min(times) if times else None


def keys_of(*groups: Iterable[Any]) -> list[str]:
    """Every unit named in the groups' keys."""
    return sorted({g[0] for part in groups for g in part})
