"""Rollups of settled history: per local day and unit, the counts every SLA figure is made of.

A district's quarter of SLA figures would otherwise read every call, evaluation and ticket of
the quarter each time. An ended ticket takes no more events, so the rows it keys in a day (its
calls dispatched, its report, first dispatch or closing, its evaluations and escalations that
day) can no longer change — as of any instant at or after the latest time they hold (a
deadline, an answer, the ending). ``roll_up`` writes, for each local day before today, for each
dimension (department, category, community, street) and unit, what ``measures`` computes over
the day's rows of **ended** tickets as of that instant (the day's ``settled_at``):

- ``rollup_calls``: report-in and handling counts and minute sums, per role;
- ``rollup_minutes``: the day's MTTA / MTTH minutes, sorted (float64): percentiles are merged
  **exactly** (the ⌈p·n⌉-th smallest of the concatenated days), not estimated;
- ``rollup_closes``, ``rollup_centre``, ``rollup_closed``, ``rollup_escalations``,
  ``rollup_evaluations``: the other families' counts;
- ``rollup_firsts``: distinct tickets (evaluated, reopened) do not add up over days, so each
  evaluation row is kept with the local day of the ticket's previous one of the same unit: a
  ticket is new to a period when that day is before the period's (bucket's) first;
- ``rollup_open``: the tickets not ended then, whose rows of that day are read raw at question
  time (a few in a hundred; ``roll_up`` rolls the day again once some of them have ended).

Every family's rows are also keyed by ``settled_day``: the local day by whose end the tickets
counted in them had stopped changing — the rolled-up day itself for most; for a ticket whose
ending, or a deadline a count still compares with the instant, came on a later day, that day
(``rollup_settles`` lists these tickets). A question as of an instant takes whole the rows
settled before the instant's day (``cut``) and reads raw, as of the instant, the rows of the
tickets settling on it or later — no part is ever worked out twice and taken away.

``rollup_weeks`` lists the local weeks (Monday to Sunday) whose seven days are rolled up and
summed: each family's whole rows of the seven days added up (minutes merged, sorted) under
``settled_day`` ``week`` and the week's Monday, so a quarter reads 13 rows of a unit, not 91. A
question reads a week so when the week lies inside one of its buckets and every ticket of it had
settled before the instant's day; rolling a day of it up again takes the week out until
``roll_up`` sums it again (a forgotten day ends a prefix, so its week is never read).

``rollup_days`` lists the days rolled up. An event whose business time falls in a rolled-up day
(a backfill, a late report) deletes that day there, in the same transaction that applies it
(``forget``, from ``apply_events``), so a rollup is never read stale; ``roll_up`` writes it again. On
PostgreSQL the builder takes the projections' lock, so no batch is applied between its reading a
day and writing it.

``rolled_readers`` answer for a **prefix** of rolled-up days — consecutive local days from the
period's start, each over by the instant asked; ``sla_stats`` adds the raw rows of the prefix's
open and still-settling tickets and every raw row after the prefix (``measures`` over that span).
Questions limited to a street or a community, or whose start is not a local midnight, read raw
rows only.
"""

from __future__ import annotations

import struct
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (Connection, Engine, Integer, LargeBinary, String, and_, bindparam, case, cast, delete, func,
                        insert, literal, literal_column, or_, select, text)
from sqlalchemy.sql.elements import BindParameter

from dispatch.adapters.database import BINARY_RESULTS
from dispatch.projections import measures as m
from dispatch.projections import tables as t
from dispatch.projections.figures import DIMENSIONS, Window
from dispatch.projections.verdicts import touched_query

__all__ = ["DIMENSIONS", "Among", "Minutes", "Prefix", "RawPart", "RollupResult", "cut", "forget", "nearest_ranks",
           "or_after", "prefix", "raw_rows", "roll_up", "rolled_readers"]

# a shorter run of days is read raw: its rows cost less than the rollups' parts around them
# (the tickets still settling, those open when rolled up) — measured: a week, 100 ms raw vs 160 ms
MIN_PREFIX = timedelta(days=14)
_MICRO = timedelta(microseconds=1)
_DAY = t.rollup_days.c.day.type
WHOLE = "*"  # the ``settled_day`` of a day's rows summed over their settled days (sorts before any day)
WEEK = "week"  # the ``settled_day`` of a week's rows, under its Monday: its days' whole rows summed (after any day)
_FAMILIES = (t.rollup_calls, t.rollup_minutes, t.rollup_closes, t.rollup_centre, t.rollup_closed,
             t.rollup_escalations, t.rollup_evaluations, t.rollup_firsts)


# -- invalidation (from the projection's own transaction) ---------------------------------------------

def forget(conn: Connection, times: Iterable[Any]) -> None:
    """The days holding any of ``times`` (events just applied) are rolled up no more."""
    found = [at for at in times if isinstance(at, datetime) and at.tzinfo is not None and 1900 < at.year < 9000]
    # (an impossible time was quarantined, not applied: it made no row)
    if not found:
        return
    d = t.rollup_days.c
    conn.execute(delete(t.rollup_days).where(d.day_end > min(found), d.day_start <= max(found)))


# -- building ------------------------------------------------------------------------------------------

def _day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=tz)
    nxt = day + timedelta(days=1)
    return start, datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz)


def _day_rows(d0: datetime, d1: datetime, *, ended: bool) -> Any:
    """The tickets with a row keyed in ``[d0, d1)`` (``verdicts.touched``), ended or not yet."""
    tk = t.tickets.c
    state = tk.ended_at.is_not(None) if ended else tk.ended_at.is_(None)
    return select(tk.ticket_id).where(tk.ticket_id.in_(touched_query(m.Question(d1, d0, d1))), state)


def _settles(conn: Connection, d0: datetime, d1: datetime) -> dict[str, datetime]:
    """When each ended ticket with a row in the day stops counting differently as of later
    instants: its ending (no event comes after it) or, if later, a deadline a count still
    compares with the instant — the report-in of a call left unanswered and never closed out (a
    superseded one), the handling of a lead call left unhandled (docs/figures.md)."""
    tk, c = t.tickets.c, t.calls.c
    ids = _day_rows(d0, d1, ended=True).subquery()
    found: dict[str, datetime] = {tid: at for tid, at in conn.execute(
        select(tk.ticket_id, tk.ended_at).where(tk.ticket_id.in_(select(ids.c[0]))))}
    unanswered = select(c.ticket_id, func.max(c.ack_due)).where(
        c.ticket_id.in_(select(ids.c[0])), c.answered_at.is_(None), c.closed_out_at.is_(None)).group_by(c.ticket_id)
    unhandled = select(c.ticket_id, func.max(c.handle_due)).where(
        c.ticket_id.in_(select(ids.c[0])), c.role == "lead", c.handled_at.is_(None), c.handle_due.is_not(None),
        or_(c.answer.is_(None), c.answer != "rejected")).group_by(c.ticket_id)
    for query in (unanswered, unhandled):
        for tid, due in conn.execute(query):
            if due is not None and due > found[tid]:
                found[tid] = due
    return found


def _rows_of(day: str, dim: str, counts: dict[Any, dict[str, Any]], settled: Sequence[str],
             *names: str) -> list[dict[str, Any]]:
    out = []
    for group, values in counts.items():
        row: dict[str, Any] = {"day": day, "dim": dim, "unit": group[0], "settled_day": settled[int(group[1])]}
        for name, value in zip(names, group[2:]):
            row[name] = value
        row.update(values)
        out.append(row)
    return out


def _ended_only(day: str) -> Any:
    """A ``Question.among`` admitting the rows of the tickets not open when ``day`` was rolled up."""
    o = t.rollup_open.c

    def among(ticket_id: Any, time: Any) -> Any:
        return ticket_id.not_in(select(o.ticket_id).where(o.day == day))
    return among


def _settled_classes(day: str, later: dict[str, list[str]]) -> tuple[list[str], Any]:
    """The days the day's tickets settled by (the day itself first) and a ``Question.classes``
    giving each row's index among them (``later``: the tickets of each later day)."""
    settled = [day, *sorted(later)]
    if len(settled) == 1:
        return settled, lambda ticket_id: literal_column("0")
    return settled, lambda ticket_id: case(*[(ticket_id.in_(later[s]), literal_column(str(i)))
                                             for i, s in enumerate(settled) if i],
                                           else_=literal_column("0"))


def _build_day(conn: Connection, day: str, d0: datetime, d1: datetime, now: datetime) -> None:
    import numpy as np

    for table in (*_FAMILIES, t.rollup_open, t.rollup_settles):
        conn.execute(delete(table).where(table.c.day == day))
    conn.execute(delete(t.rollup_weeks).where(t.rollup_weeks.c.week == _monday(day)))  # summed from what it was
    settles = _settles(conn, d0, d1)
    later = {tid for tid, at in settles.items() if at > now}  # a deadline still ahead: read raw for now
    open_ids = sorted(set(conn.execute(_day_rows(d0, d1, ended=False)).scalars()) | later)
    if open_ids:
        conn.execute(insert(t.rollup_open), [{"day": day, "ticket_id": i, "day_start": d0, "day_end": d1,
                                              "settles_at": settles.get(i)} for i in open_ids])
    settled_at = max([d0, *(at for tid, at in settles.items() if tid not in later)]) + _MICRO
    tz = d0.tzinfo
    after: list[dict[str, Any]] = [{"day": day, "ticket_id": tid, "day_start": d0, "day_end": d1,
                                    "settles_at": at + _MICRO, "settled_day": _local_day(at + _MICRO, tz)}
                                   for tid, at in sorted(settles.items()) if tid not in later and at + _MICRO >= d1]
    if after:
        conn.execute(insert(t.rollup_settles), after)
    by_day: dict[str, list[str]] = defaultdict(list)
    for row in after:
        by_day[row["settled_day"]].append(row["ticket_id"])
    settled, classes = _settled_classes(day, by_day)
    q = m.Question(settled_at, d0, d1, among=_ended_only(day), classes=classes)
    rows: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for dim in DIMENSIONS:
        rows[t.rollup_calls] += _rows_of(day, dim, m.call_counts(conn, q, dim), settled, "role")
        for (group, metric), values in m.minute_values(conn, q, dim).items():
            ordered = np.sort(np.asarray(values, dtype=np.float64))
            rows[t.rollup_minutes].append({"day": day, "dim": dim, "unit": group[0],
                                           "settled_day": settled[int(group[1])], "metric": metric,
                                           "n": len(ordered), "sorted": ordered.tobytes()})
        rows[t.rollup_closes] += _rows_of(day, dim, m.close_counts(conn, q, dim), settled)
        if dim != "department":
            rows[t.rollup_centre] += _rows_of(day, dim, m.centre_counts(conn, q, dim), settled)
            rows[t.rollup_closed] += [{"day": day, "dim": dim, "unit": g[0], "settled_day": settled[int(g[1])],
                                       "n": n} for g, n in m.closed_counts(conn, q, dim).items()]
            rows[t.rollup_escalations] += [{"day": day, "dim": dim, "unit": g[0], "settled_day": settled[int(g[1])],
                                            "level": g[2], "n": n}
                                           for g, n in m.escalation_counts(conn, q, dim).items()]
        for group, counts in m.evaluation_counts(conn, q, dim).items():
            rows[t.rollup_evaluations].append({"day": day, "dim": dim, "unit": group[0],
                                               "settled_day": settled[int(group[1])],
                                               **{k: counts[k] for k in t.EVALUATION_COUNTS}})
        rows[t.rollup_firsts] += _firsts(conn, q, dim, day, settled)
    for table in _FAMILIES:
        if rows[table]:
            # a day whose tickets all settled by its end needs no rows by settled day
            conn.execute(insert(table), _whole(table, rows[table]) + (rows[table] if len(settled) > 1 else []))
    conn.execute(delete(t.rollup_days).where(t.rollup_days.c.day == day))
    conn.execute(insert(t.rollup_days).values(day=day, day_start=d0, day_end=d1, settled_at=settled_at,
                                              settled_by=settled[-1]))


def _whole(table: Any, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of a day summed over their settled days (``settled_day`` ``WHOLE``): what a
    question reads of a day whose tickets had all settled before its instant's day."""
    import numpy as np

    keys = [c.name for c in table.primary_key.columns if c.name != "settled_day"]
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = tuple(row[k] for k in keys)
        found = out.get(key)
        if found is None:
            out[key] = {**row, "settled_day": WHOLE}
        elif table is t.rollup_minutes:
            merged = np.sort(np.concatenate([np.frombuffer(found["sorted"], dtype=np.float64),
                                             np.frombuffer(row["sorted"], dtype=np.float64)]))
            found.update(n=len(merged), sorted=merged.tobytes())
        else:
            for name, value in row.items():
                if name not in keys and name != "settled_day":
                    found[name] += value
    return list(out.values())


def _monday(day: str) -> str:
    d = date.fromisoformat(day)
    return (d - timedelta(days=d.weekday())).isoformat()


def _week_days(monday: str) -> list[str]:
    first = date.fromisoformat(monday)
    return [(first + timedelta(days=i)).isoformat() for i in range(7)]


def _build_week(conn: Connection, monday: str, tz: ZoneInfo) -> bool:
    """Each family's rows of the week from ``monday``: its seven days' whole rows summed (minutes
    merged, sorted), under ``settled_day`` ``WEEK``; False if a day of it is not rolled up."""
    import numpy as np

    days = _week_days(monday)
    d = t.rollup_days.c
    settled_by = conn.execute(select(d.settled_by).where(d.day.in_(days))).scalars().all()
    if len(settled_by) < len(days):
        return False
    for table in _FAMILIES:
        c = table.c
        conn.execute(delete(table).where(c.day == monday, c.settled_day == WEEK))
        keys = [col for col in table.primary_key.columns if col.name not in ("day", "settled_day")]
        whole = and_(c.settled_day == WHOLE, c.day.in_(days))
        if table is t.rollup_minutes:
            merged: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
            for row in conn.execute(select(*keys, c.sorted).where(whole)):
                merged[tuple(row[:-1])].append(np.frombuffer(row[-1], dtype=np.float64))
            rows = []
            for key, parts in merged.items():
                ordered = np.sort(np.concatenate(parts))
                rows.append({"day": monday, "settled_day": WEEK, **dict(zip((k.name for k in keys), key)),
                             "n": len(ordered), "sorted": ordered.tobytes()})
            if rows:
                conn.execute(insert(table), rows)
            continue
        sums = [col for col in table.columns if not col.primary_key]
        summed = select(literal(monday, _DAY).label("day"), literal(WEEK, _DAY).label("settled_day"), *keys,
                        *[func.sum(col).label(col.name) for col in sums]).where(whole).group_by(*keys)
        conn.execute(insert(table).from_select(["day", "settled_day", *[k.name for k in keys],
                                                *[col.name for col in sums]], summed))
    start, _ = _day_bounds(date.fromisoformat(days[0]), tz)
    _, end = _day_bounds(date.fromisoformat(days[-1]), tz)
    conn.execute(insert(t.rollup_weeks).values(week=monday, week_start=start, week_end=end, settled_by=max(settled_by)))
    return True


def _firsts(conn: Connection, q: m.Question, dim: str, day: str, settled: Sequence[str]) -> list[dict[str, Any]]:
    ev = t.evaluations
    key = func.coalesce(ev.c.department, "") if dim == "department" else getattr(ev.c, dim)
    query = select(key, q.bucket(ev.c.at), m.previous_evaluation(q, dim), ev.c.reopened_at,
                   m.previous_evaluation(q, dim, reopened=True)).where(q.within(ev.c.at))
    tz = q.start.tzinfo if q.start is not None else timezone.utc
    counts: dict[tuple[str, int, str, str], int] = defaultdict(int)
    for unit, index, previous, reopened, previous_reopened in conn.execute(query):
        counts[(unit, int(index), "evaluated", _local_day(previous, tz))] += 1
        if reopened is not None:
            counts[(unit, int(index), "reopened", _local_day(previous_reopened, tz))] += 1
    return [{"day": day, "dim": dim, "unit": unit, "settled_day": settled[index], "kind": kind, "prev_day": prev,
             "n": n} for (unit, index, kind, prev), n in counts.items()]


def _local_day(at: datetime | None, tz: Any) -> str:
    return "" if at is None else at.astimezone(tz).date().isoformat()


@dataclass
class RollupResult:
    built: int = 0  # days rolled up (or again) by this run
    days: int = 0  # rolled up in all, after it
    open_tickets: int = 0  # (day, ticket) rows read raw: tickets not ended when their day was rolled up
    weeks_built: int = 0  # weeks summed from their days by this run
    weeks: int = 0  # in all, after it

    def to_dict(self) -> dict[str, int]:
        return {"built": self.built, "days": self.days, "open_tickets": self.open_tickets,
                "weeks_built": self.weeks_built, "weeks": self.weeks}


def roll_up(engine: Engine, timezone_name: str, now: datetime, *, limit: int | None = None) -> RollupResult:
    """Roll up every local day before ``now``'s not rolled up yet, and again those some of whose
    open tickets have ended since (at most ``limit`` days), one transaction per day; then sum each
    week whose seven days are rolled up and which is not (again), one transaction per week."""
    t.ensure_tables(engine)
    tz = ZoneInfo(timezone_name)
    today = now.astimezone(tz).date()
    result = RollupResult()
    o, tk = t.rollup_open.c, t.tickets.c
    with engine.connect() as conn:
        first = conn.execute(select(func.min(tk.reported_at))).scalar()
        done = set(conn.execute(select(t.rollup_days.c.day)).scalars())
        ended = or_(and_(o.settles_at.is_(None), tk.ended_at.is_not(None)), o.settles_at <= now)
        again = set(conn.execute(select(o.day).join(t.tickets, tk.ticket_id == o.ticket_id)
                                 .where(ended).distinct()).scalars())
    if first is None:
        return result
    day = first.astimezone(tz).date()
    while day < today and (limit is None or result.built < limit):
        name = day.isoformat()
        if name not in done or name in again:
            d0, d1 = _day_bounds(day, tz)
            with engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(48151623)"))  # the projections' (apply._claim)
                _build_day(conn, name, d0, d1, now)
            result.built += 1
        day += timedelta(days=1)
    with engine.connect() as conn:
        days = set(conn.execute(select(t.rollup_days.c.day)).scalars())
        summed = set(conn.execute(select(t.rollup_weeks.c.week)).scalars())
    for monday in sorted({_monday(d) for d in days} - summed):
        if all(d in days for d in _week_days(monday)):
            with engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(48151623)"))
                result.weeks_built += _build_week(conn, monday, tz)
    with engine.connect() as conn:
        result.days = int(conn.execute(select(func.count()).select_from(t.rollup_days)).scalar() or 0)
        result.weeks = int(conn.execute(select(func.count()).select_from(t.rollup_weeks)).scalar() or 0)
        result.open_tickets = int(conn.execute(select(func.count()).select_from(t.rollup_open)).scalar() or 0)
    return result


# -- reading -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Prefix:
    """Rolled-up days ``[first, last]`` covering ``[start, end)`` of the question."""

    first: str
    last: str
    start: datetime
    end: datetime
    settled_by: tuple[str, ...] = ()  # each day's latest settled day, in order
    weeks: tuple[tuple[str, str], ...] = ()  # the summed weeks among the days: (Monday, latest settled day)

    @cached_property
    def days(self) -> list[str]:
        """Its days, in order (``settled_by``'s; worked out once: each reader of a question asks)."""
        first = date.fromisoformat(self.first)
        return [(first + timedelta(days=i)).isoformat() for i in range(len(self.settled_by))]


def prefix(conn: Connection, q: m.Question, tz: ZoneInfo) -> Prefix | None:
    """The longest run of rolled-up days from the question's start, inside its period and over
    by its instant (every row of them at or before it; None: read raw rows only)."""
    lo = q.buckets[0].start if q.buckets else q.start
    hi = q.buckets[-1].end if q.buckets else q.end
    if lo is None or q.street is not None or q.community is not None:
        return None
    local = lo.astimezone(tz)
    if (local.hour, local.minute, local.second, local.microsecond) != (0, 0, 0, 0):
        return None
    d = t.rollup_days.c
    query = select(d.day, d.day_end, d.settled_by).where(d.day_start >= lo, d.day_end <= q.as_of + _MICRO
                                                         ).order_by(d.day)
    if hi is not None:
        query = query.where(d.day_end <= hi)
    expected, first, last, end, settled_by = local.date(), None, None, None, []
    for day, day_end, by in conn.execute(query):
        if day != expected.isoformat():
            break
        first, last, end = first or day, day, day_end
        settled_by.append(by)
        expected += timedelta(days=1)
    if first is None or last is None or end is None or (end - lo) < MIN_PREFIX:
        return None
    w = t.rollup_weeks.c
    latest = (date.fromisoformat(last) - timedelta(days=6)).isoformat()
    weeks = conn.execute(select(w.week, w.settled_by).where(w.week >= first, w.week <= latest).order_by(w.week)).all()
    return Prefix(first, last, lo, end, tuple(settled_by), tuple((week, by) for week, by in weeks))


def cut(as_of: datetime, tz: ZoneInfo) -> tuple[datetime, str]:
    """The local midnight on or before the instant (one microsecond on, as a prefix's last day may
    end at it) and its day: rolled-up rows whose tickets settled before that day are taken whole."""
    local = (as_of + _MICRO).astimezone(tz)
    midnight = datetime(local.year, local.month, local.day, tzinfo=tz)
    return midnight, midnight.date().isoformat()


@dataclass(frozen=True)
class RawPart:
    """A stretch ``[start, end)`` of a prefix read raw, and the rows of it that are: a
    ``Question.among``."""

    start: datetime
    end: datetime
    among: Any


# a day holding fewer than this share of the busiest day's tickets to read raw is read ticket by
# ticket, through the tables' keys, not through the time's index with most of its rows left out (a
# quarter as of its end: the last week's days hold 95 to 2,556 such tickets of some 3,500)
SPARSE = 0.25


def raw_rows(conn: Connection, p: Prefix, as_of: datetime, tz: ZoneInfo) -> list[RawPart]:
    """What of the prefix is read raw (none: nothing): the rows of the tickets open when their day
    was rolled up (those days' rows), and every row of the rolled-up tickets that settled on or
    after the instant's day (``cut``; the rollups keep them under a later settled day). A ticket
    settles at one time, so every day of it in the prefix is either open or settling. From its
    first day holding such rows; the days before the first dense one (``SPARSE``) are a part of
    their own, its tickets named."""
    o, s = t.rollup_open.c, t.rollup_settles.c
    cut_at, cut_day = cut(as_of, tz)
    postgres = conn.dialect.name == "postgresql"
    # only the days whose latest settled day is the cut's or later hold any (a few days before it);
    # each day's ids come back as the one value that names them again (``_OneOf``)
    split = _split_days(p, cut_day)
    listed = func.string_agg(s.ticket_id, literal_column("','")) if postgres else func.json_group_array(s.ticket_id)
    late = {day: (start, n, ids) for day, start, n, ids in conn.execute(
        select(s.day, func.min(s.day_start), func.count(), listed).where(s.day.in_(split), s.settles_at >= cut_at)
        .group_by(s.day))} if split else {}
    opened = {day: (start, n) for day, start, n in conn.execute(
        select(o.day, func.min(o.day_start), func.count()).where(o.day >= p.first, o.day <= p.last).group_by(o.day))}
    days = sorted(late.keys() | opened.keys())
    if not days:
        return []
    held = {day: late.get(day, (None, 0, None))[1] + opened.get(day, (None, 0))[1] for day in days}
    start_of = {day: (late.get(day) or opened[day])[0] for day in days}
    dense = next(day for day in days if held[day] >= SPARSE * max(held.values()))

    def among_of(chosen: list[str], *, named: bool) -> Among:
        ids = [late[day][2] for day in chosen if day in late]
        return Among(postgres, p.first, p.last, chosen[0], chosen[-1], named, _joined(postgres, ids) if ids else None)

    sparse = [day for day in days if day < dense]
    parts = [RawPart(start_of[sparse[0]], start_of[dense], among_of(sparse, named=True))] if sparse else []
    return parts + [RawPart(start_of[dense], p.end, among_of([day for day in days if day >= dense], named=False))]


@dataclass(frozen=True)
class Among:
    """The rows of a stretch of a prefix read raw, a ``measures.Question.among``: those of the
    tickets open when their day (of the prefix's ``first`` to ``last``) was rolled up, at a time
    in that day, and those of the tickets ``settling`` (their ids as one value, ``_OneOf``); with
    ``named``, found through the tickets' keys (those open on ``first_day`` to ``last_day``, and
    the settling ones); ``after``: every row from then on too. ``template``: the same with named
    parameters, so the statements built from it serve every question (``measures.template``)."""

    postgres: bool
    first: Any
    last: Any
    first_day: Any
    last_day: Any
    named: bool
    settling: Any = None
    after: Any = None

    def __call__(self, ticket_id: Any, time: Any) -> Any:
        o = t.rollup_open.c
        settling = _OneOf(self.postgres, self.settling) if self.settling is not None else None
        within = and_(o.day >= self.first, o.day <= self.last)
        open_then = select(o.ticket_id).where(o.ticket_id == ticket_id, within, o.day_start <= time,
                                              o.day_end > time).exists()
        if self.named:  # the rows of the tickets named: through their key; most of them are settling,
            # so that (a hashed look-up) is asked first and the open ones' days only of the rest
            open_ids = select(o.ticket_id).where(o.day >= self.first_day, o.day <= self.last_day)
            names = open_ids.union_all(settling.names) if settling is not None else open_ids
            found = and_(ticket_id.in_(names), or_(settling(ticket_id), open_then) if settling is not None
                         else open_then)
        else:
            opened_then = and_(ticket_id.in_(select(o.ticket_id).where(within)), open_then)
            found = or_(opened_then, settling(ticket_id)) if settling is not None else opened_then
        return found if self.after is None else or_(time >= self.after, found)

    def template(self) -> tuple[Any, Among, dict[str, Any]]:
        """Its shape, itself with named parameters, and its values of them."""
        values = {"a_first": self.first, "a_last": self.last, "a_first_day": self.first_day,
                  "a_last_day": self.last_day}
        day: Any = lambda name: bindparam(name, type_=_DAY)  # noqa: E731
        like = Among(self.postgres, day("a_first"), day("a_last"), day("a_first_day"), day("a_last_day"), self.named)
        if self.settling is not None:
            values["late_ids"] = self.settling
            like = replace(like, settling=bindparam("late_ids", type_=String()))
        if self.after is not None:
            values["a_after"] = self.after
            like = replace(like, after=bindparam("a_after", type_=t.UtcDateTime()))
        return (self.postgres, self.named, self.settling is not None, self.after is not None), like, values


def or_after(among: Among, end: datetime) -> Among:
    """A raw part's rows (``among``) and every row from ``end`` on."""
    return replace(among, after=end)


def _joined(postgres: bool, lists: list[str]) -> str:
    """Lists of ids (``_OneOf``'s values) as one."""
    if postgres:
        return ",".join(lists)
    return "[" + ",".join(found[1:-1] for found in lists if len(found) > 2) + "]"


class _OneOf:
    """``ticket_id`` among the ids ``listed`` as one value however many they are: joined by commas
    (ticket ids are UUIDs) and split by PostgreSQL, a JSON array read by SQLite's ``json_each``.
    (A text array bound from Python is quoted id by id: 15 ms for 7,000 ids, in each statement.)
    ``names``: the ids, a subquery."""

    def __init__(self, postgres: bool, listed: Any) -> None:
        ids: Any = listed if isinstance(listed, BindParameter) else bindparam("late_ids", listed)
        self.names: Any = select(func.unnest(func.string_to_array(ids, ","))) if postgres \
            else select(literal_column("value")).select_from(func.json_each(ids))

    def __call__(self, ticket_id: Any) -> Any:
        return ticket_id.in_(self.names)


def _bucket_starts(q: m.Question, tz: ZoneInfo) -> list[str]:
    windows = list(q.buckets) or [Window(q.start, q.end)]
    return [w.start.astimezone(tz).date().isoformat() if w.start is not None else "" for w in windows]


def nearest_ranks(ordered: Any, n: Any) -> Any:
    """The p50 and p90 of ``n`` sorted float64 values (``ordered``, bytes), read off where they
    sit, as 16 bytes: ``measures.ranks`` in SQL's integers (⌈n/2⌉-th and ⌈9n/10⌉-th smallest)."""
    def at(k: Any) -> Any:  # the k-th smallest, from 0
        return func.substring(ordered, cast(8 * k + 1, Integer), 8)
    return at((n + 1) // 2 - 1).concat(at((9 * n + 9) // 10 - 1))


def _closed_before(q: m.Question, tz: ZoneInfo, raw_from: datetime | None) -> str | None:
    """The local day starting the first bucket a raw row from ``raw_from`` on may fall in (a
    rollup row of an earlier day is in a bucket no raw row reaches); None: every bucket is
    reached by none."""
    if raw_from is None:
        return None
    windows = list(q.buckets) or [Window(q.start, q.end)]
    for w in windows:
        if w.end is None or w.end > raw_from:
            return w.start.astimezone(tz).date().isoformat() if w.start is not None else ""
    return None


def _split_days(p: Prefix, cut_day: str) -> list[str]:
    """The prefix's days some of whose tickets settled on ``cut_day`` or later."""
    return [day for day, by in zip(p.days, p.settled_by) if by >= cut_day]


def _weeks(q: m.Question, p: Prefix, tz: ZoneInfo, cut_day: str) -> list[str]:
    """The prefix's summed weeks a question may read whole (their Mondays): every ticket of them
    settled before ``cut_day``, and the week inside one of the question's buckets."""
    starts = _bucket_starts(q, tz)
    return [week for week, by in p.weeks
            if by < cut_day and not any(week < s <= _week_days(week)[-1] for s in starts)]


_TWO_FLOATS = struct.Struct("=dd")  # a group's p50 and p90, as ``nearest_ranks`` sends them


@dataclass
class Minutes:
    """The rolled-up minutes behind the percentiles, per (group, metric): ``chunks``, sorted
    float64 values in chunks (with each, whether it alone is the group's, so sorted), merged
    with the raw rows' at question time; ``picked``, the p50 and p90 of the groups no raw row
    reaches, read off their one sorted chunk by the database."""

    chunks: defaultdict[tuple[Any, str], list[tuple[bytes, bool]]] = field(
        default_factory=lambda: defaultdict(list))
    picked: dict[tuple[Any, str], tuple[float, float]] = field(default_factory=dict)


def rolled_readers(q: m.Question, by: str, p: Prefix, tz: ZoneInfo, raw_from: datetime | None = None, *,
                   roles: bool = True) -> dict[str, Callable[[Connection], Any]]:
    """Every family's counts over the prefix's days of the tickets settled before the instant's
    day (``cut``), keyed as ``measures`` keys them: a reader per family, each one statement on
    the connection it is given (so they may run side by side). ``raw_from``: the earliest time
    of a raw row the question adds to them (None: it adds none); the buckets that end by then
    take nothing from raw rows. ``roles``: as ``measures.call_counts``'."""
    _, cut_day = cut(q.as_of, tz)
    weeks = _weeks(q, p, tz, cut_day)
    split = _split_days(p, cut_day)
    covered = {day for week in weeks for day in _week_days(week)} | set(split)
    # every value a parameter (each statement is built once per shape: ``measures.statement``)
    found_values: dict[str, Any] = {
        "r_first": p.first, "r_last": p.last, "r_cut": cut_day, "r_weeks": weeks, "r_split": split,
        "r_rest": [day for day in p.days if day not in covered] if weeks else [],
        "r_closed": _closed_before(q, tz, raw_from),
        **{f"r_end{i}": w.end.astimezone(tz).date().isoformat()
           for i, w in enumerate(q.buckets[:-1]) if w.end is not None},
        **{f"r_start{i}": start for i, start in enumerate(_bucket_starts(q, tz))}}
    values = {name: value for name, value in found_values.items() if value is not None and value != []}
    shape = (by, roles, len(q.buckets), tuple(sorted(values)))
    params = {name: bindparam(name, type_=_DAY, expanding=isinstance(value, list)) for name, value in values.items()}

    def day_bucket() -> Any:  # a row's bucket, by its day
        if len(q.buckets) <= 1:
            return literal_column("0")
        day = literal_column("day", _DAY)  # (each family's table is read alone)
        ends = [name for name in params if name.startswith("r_end")]
        return case(*[(day < params[name], literal_column(str(i))) for i, name in enumerate(ends)],
                    else_=literal_column(str(len(q.buckets) - 1)))

    def settled(c: Any) -> Any:
        """The table's rows, in the prefix's days, of the tickets settled before the cut's day:
        the summed weeks' rows, the other days' whole rows where all of their tickets had
        settled, and the split days' rows of the days settled before it — each part through an
        index of its own (PostgreSQL ORs their bitmaps), in one statement, so no group comes
        twice."""
        parts = []
        if "r_weeks" in params:
            parts.append(and_(c.settled_day == WEEK, c.day.in_(params["r_weeks"])))
            if "r_rest" in params:
                parts.append(and_(c.settled_day == WHOLE, c.day.in_(params["r_rest"])))
        else:
            whole = and_(c.settled_day == WHOLE, c.day >= params["r_first"], c.day <= params["r_last"])
            parts.append(and_(whole, c.day.not_in(params["r_split"])) if "r_split" in params else whole)
        if "r_split" in params:
            parts.append(and_(c.day.in_(params["r_split"]), c.settled_day != WHOLE, c.settled_day < params["r_cut"]))
        return or_(*parts) if len(parts) > 1 else parts[0]

    def ask(conn: Connection, family: Any, build: Callable[[], Any]) -> Any:
        return conn.execute(m.statement(conn, ("rollups", family, shape), build), values).all()

    def grouped(table: Any, columns: Sequence[str], *extra: str) -> Callable[[Connection], dict[Any, dict[str, Any]]]:
        def build() -> Any:
            c = table.c
            return (select(c.unit, day_bucket().label("b"), *[c[e] for e in extra],
                           *[func.sum(c[n]).label(n) for n in columns])
                    .where(c.dim == by, settled(c))
                    .group_by(c.unit, literal_column("b"), *[c[e] for e in extra]))

        def read(conn: Connection) -> dict[Any, dict[str, Any]]:
            at = 2 + len(extra)  # the sums follow the unit, the bucket and the extra keys
            # (a sum of a group's NOT NULL counts: never NULL)
            return {(row[0], int(row[1]), *row[2:at]): dict(zip(columns, row[at:]))
                    for row in ask(conn, table.name, build)}
        return read

    def counted(read: Callable[[Connection], dict[Any, dict[str, Any]]]) -> Callable[[Connection], dict[Any, Any]]:
        return lambda conn: {k: v["n"] for k, v in read(conn).items()}

    def all_roles(read: Callable[[Connection], dict[Any, dict[str, Any]]]) -> Callable[[Connection], dict[Any, Any]]:
        return lambda conn: {(*k, m.ALL_ROLES): v for k, v in read(conn).items()}

    def firsts(conn: Connection) -> dict[Any, dict[str, int]]:
        # distinct tickets: the rows whose previous one of the unit came before their bucket's start
        def build() -> Any:
            f = t.rollup_firsts.c
            starts = [params[name] for name in params if name.startswith("r_start")]
            # (consecutive: each bucket ends where the next starts)
            start_of = case(*[(f.day < nxt, s) for s, nxt in zip(starts, starts[1:])],
                            else_=starts[-1]) if len(starts) > 1 else starts[0]
            evaluated = f.kind == "evaluated"
            return (select(f.unit, day_bucket().label("b"),
                           func.sum(case((evaluated, f.n), else_=literal_column("0"))),
                           func.sum(case((evaluated, literal_column("0")), else_=f.n)))
                    .where(f.dim == by, settled(f), f.prev_day < start_of)
                    .group_by(f.unit, literal_column("b")))
        return {(unit, int(b)): {"tickets_evaluated": int(n), "reopened": int(reopened)}
                for unit, b, n, reopened in ask(conn, "firsts", build)}

    def minutes(conn: Connection) -> Minutes:
        # each group's sorted days or weeks, concatenated (PostgreSQL joins each group's into one
        # value: a community's quarter day by day, 21,800 rows → 3,200, measured 192 → 135 ms),
        # sent in binary (``BINARY_RESULTS``); with each, whether it is one row's, so sorted. A
        # group of one row in a bucket no raw row reaches (before ``raw_from``) is whole here:
        # PostgreSQL sends its p50 and p90 alone, read off where they sit (8 bytes each, not the
        # ~4,500 of a community's week)
        postgres = conn.dialect.name == "postgresql"

        def build() -> Any:
            mn = t.rollup_minutes.c
            b = day_bucket().label("b")
            if postgres:
                joined = func.string_agg(mn.sorted, literal(b"", LargeBinary))
                whole = and_(func.count() == 1,
                             *([func.max(mn.day) < params["r_closed"]] if "r_closed" in params else []))
                query = (select(mn.unit, b, mn.metric, case((whole, None), else_=joined), func.count(),
                                case((whole, nearest_ranks(joined, func.sum(mn.n))), else_=None))
                         .group_by(mn.unit, literal_column("b"), mn.metric))
            else:
                query = select(mn.unit, b, mn.metric, mn.sorted, literal_column("1"), literal_column("NULL"))
            return query.where(mn.dim == by, settled(mn)).execution_options(**{BINARY_RESULTS: True})

        found = Minutes()
        picked_of, chunks, two = found.picked, found.chunks, _TWO_FLOATS.unpack
        for unit, bucket, metric, blob, rows, picked in ask(conn, "minutes", build):
            if picked is not None:
                picked_of[((unit, int(bucket)), metric)] = two(picked)
            else:
                chunks[((unit, int(bucket)), metric)].append((bytes(blob), rows == 1))
        return found

    readers: dict[str, Callable[[Connection], Any]] = {
        "minutes": minutes,
        "calls": (grouped(t.rollup_calls, t.CALL_COUNTS, "role") if roles
                  else all_roles(grouped(t.rollup_calls, t.CALL_COUNTS))),
        "closes": grouped(t.rollup_closes, ("closed_tickets", "close_on_time", "close_waiting_late")),
        "evaluations": grouped(t.rollup_evaluations, t.EVALUATION_COUNTS),
        "firsts": firsts}
    if by != "department":
        readers["centre"] = grouped(t.rollup_centre, ("reported", "accept_on_time", "accept_judged",
                                                      "dispatch_on_time", "dispatch_judged"))
        readers["closed"] = counted(grouped(t.rollup_closed, ("n",)))
        readers["escalations"] = counted(grouped(t.rollup_escalations, ("n",), "level"))
    return readers
