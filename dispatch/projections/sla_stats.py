"""SLA statistics by department, category, community or street, optionally per day/week/month,
and the scorecard ranking (考核) built from them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from dispatch.domain.errors import DispatchError
from dispatch.domain.reference import Reference
from dispatch.projections import measures as m
from dispatch.projections import rollups
from dispatch.projections.decode import paused_gc
from dispatch.projections.figures import (DIMENSIONS, PERIODS, Settings, Window, add_counts, call_figures, centre_figures,
                                          close_figures, evaluation_figures)
from dispatch.projections.side_by_side import side_by_side

__all__ = ["DIMENSIONS", "PERIODS", "buckets", "sla_statistics"]



def _floor(at: datetime, period: str, tz: ZoneInfo) -> datetime:
    local = at.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "week":
        local -= timedelta(days=local.weekday())
    elif period == "month":
        local = local.replace(day=1)
    return local


def _next(start: datetime, period: str) -> datetime:
    if period == "day":
        nxt = start.replace(tzinfo=None) + timedelta(days=1)
    elif period == "week":
        nxt = start.replace(tzinfo=None) + timedelta(days=7)
    else:
        nxt = (start.replace(day=28, tzinfo=None) + timedelta(days=4)).replace(day=1)
    return nxt.replace(tzinfo=start.tzinfo)


def _label(start: datetime, period: str) -> str:
    if period == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    return start.strftime("%Y-%m-%d" if period == "day" else "%Y-%m")


def buckets(first: datetime, last: datetime, period: str, tz: ZoneInfo) -> list[tuple[str, Window]]:
    """Consecutive local day/week/month windows covering ``[first, last]``."""
    out, start = [], _floor(first, period, tz)
    while start <= last:
        end = _next(start, period)
        out.append((_label(start, period), Window(start, end)))
        start = end
    return out


def _clip(outer: Window, inner: Window) -> Window:
    starts = [w for w in (outer.start, inner.start) if w is not None]
    ends = [w for w in (outer.end, inner.end) if w is not None]
    return Window(max(starts) if starts else None, min(ends) if ends else None)


def _name(reference: Reference, by: str, key: str) -> str:
    table: dict[str, Any] = getattr(reference, {"category": "categories", "community": "communities",
                                                "street": "streets", "department": "departments"}[by])
    return table[key].name if key in table else key


# no cyclic collection while the figures are read and formed: a district's quarter by week makes
# ~90,000 short-lived rows, tuples and dicts (none in a cycle, all freed by their reference
# counts), which set off ~9 collections a question at 10,000 (``freeze_startup``), each walking
# what is alive then — ~10 ms a question (measured: 171 → 161, 165 → 157 ms p50)
@paused_gc()
def sla_statistics(engine: Engine, reference: Reference, *, by: str, as_of: datetime, period: str | None = None,
                   start: datetime | None = None, end: datetime | None = None,
                   settings: Settings | None = None, street: str | None = None,
                   community: str | None = None, percentiles: bool = True,
                   use_rollups: bool = True, adapt: Any = None) -> dict[str, Any]:
    """SLA figures grouped ``by`` a dimension; ``street`` / ``community`` (ids) limit them to
    that unit's tickets. Computed in the database (``measures``): one grouped query per family
    of figures over the period's rows — the settled days at its start from their rollups
    (``rollups``; ``use_rollups=False``: raw rows only), the rest raw, added up; the families
    read side by side (``side_by_side``). ``percentiles=False``
    leaves out the MTTA/MTTH percentiles (their keys too), the dearest family, for views that
    do not show them. ``adapt``: every statement asked of other tables (``measures.Question.adapt``;
    raw rows only)."""
    if by not in DIMENSIONS:
        raise DispatchError(f"cannot group SLA statistics by {by!r}; one of {', '.join(DIMENSIONS)}")
    if period is not None and period not in PERIODS:
        raise DispatchError(f"unknown period {period!r}; one of {', '.join(PERIODS)}")
    settings = settings or Settings()
    window = Window(start, end)
    q = m.Question(as_of, start, end, street=street, community=community, adapt=adapt)
    use_rollups = use_rollups and adapt is None  # (the rollups hold the live tables' counts)
    labels: list[tuple[str | None, Window]] = [(None, window)]
    with engine.connect() as conn:
        if period is not None:
            first = start or m.first_activity(conn, q) or as_of  # unbounded: from the first call or evaluation
            last = min(as_of, end - timedelta(microseconds=1)) if end else as_of
            tz = ZoneInfo(reference.timezone)
            labels = [(label, _clip(window, w)) for label, w in buckets(first, last, period, tz)]
            q = m.Question(as_of, start, end, tuple(w for _, w in labels), street=street, community=community,
                           adapt=adapt)
        rolled = rollups.prefix(conn, q, ZoneInfo(reference.timezone)) if use_rollups else None
        # the units with only tickets closed or escalated have a row of their own in one period's
        # table; in a table by period such a row is left out (below), so they are not read
        others = by != "department" and period is None
        if rolled is None:
            calls, pct, closes, evals, centre, others_found = _raw(engine, conn, q, by, percentiles, others)
        else:
            calls, pct, closes, evals, centre, others_found = _with_rollups(
                engine, conn, q, by, rolled, ZoneInfo(reference.timezone), percentiles, others)
    per_group: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for (key, bucket, _role), counts in calls.items():
        per_group.setdefault((key, bucket), []).append(counts)
    keys = m.keys_of(calls, closes, evals, centre, *others_found)
    periods = [(label, {} if label is None else {"period": label, "period_start": _iso(w.start),
                                                 "period_end": _iso(w.end)}) for label, w in labels]
    rows: list[dict[str, Any]] = []
    none: dict[str, Any] = {}  # (a group with no counts of a family: read, never written)
    places = by != "department"  # the centre's own steps belong to places, not departments
    for key in keys:
        name = _name(reference, by, key)
        for index, (label, period_info) in enumerate(periods):
            group = (key, index)
            of_calls = call_figures(add_counts(per_group.get(group, ())), pct.get(group, none))
            of_evaluations = evaluation_figures(evals.get(group, none), settings)
            if label is not None and not (of_calls["dispatched"] or of_evaluations["tickets_evaluated"]):
                continue
            # (one dict made at once: a district's quarter by week is ~1,400 rows of ~65 figures)
            row = {by: key, "name": name, **period_info, **of_calls, **close_figures(closes.get(group, none)),
                   **of_evaluations, **(centre_figures(centre.get(group, none)) if places else none)}
            if not percentiles:
                row = {k: v for k, v in row.items() if not k.endswith(("_p50", "_p90"))}
            rows.append(row)
    result = envelope(by=by, period=period, as_of=as_of, start=start, end=end, settings=settings, rows=rows,
                      street=street, community=community)
    if period is None:
        result["ranking"] = _ranking(rows, by, settings)
        if by == "department":
            result["cooperation_ranking"] = _cooperation(calls, reference, settings)
    return result


def _add(into: dict[Any, Any], more: dict[Any, Any]) -> dict[Any, Any]:
    """Counts of two parts of a period, added up group by group."""
    for key, values in more.items():
        if isinstance(values, dict):
            mine = into.setdefault(key, {})
            for name, n in values.items():
                mine[name] = mine.get(name, 0) + n
        else:
            into[key] = into.get(key, 0) + values
    return into


def _raw(engine: Engine, conn: Any, q: m.Question, by: str, percentiles: bool, others: bool) -> tuple[Any, ...]:
    """Every family's counts from the period's rows, read side by side (``side_by_side``);
    ``others``: the tickets closed and escalated too (their units' keys). Rows
    worked out by the statement itself (``q.adapt``: a what-if's deadlines) are read once for the
    calls' counts and minutes together (``measures.call_counts_and_minutes``), not again for the
    percentiles."""
    together = percentiles and q.adapt is not None and conn.dialect.name == "postgresql"
    roles = by == "department"  # (elsewhere a group's roles are only added up)
    readers: dict[str, Callable[[Any], Any]] = {
        "calls": (lambda c: m.call_counts_and_minutes(c, q, by, roles=roles)) if together
        else lambda c: m.call_counts(c, q, by, roles=roles)}
    if percentiles and not together:
        readers["percentiles"] = lambda c: m.percentiles(c, q, by)
    readers |= {"closes": lambda c: m.close_counts(c, q, by), "evaluations": lambda c: m.evaluation_counts(c, q, by)}
    if by != "department":
        readers["centre"] = lambda c: m.centre_counts(c, q, by)
    if others:
        readers |= {"closed": lambda c: m.closed_counts(c, q, by), "escalations": lambda c: m.escalation_counts(c, q, by)}
    got = side_by_side(engine, conn, readers)
    extra = [got["closed"], got["escalations"]] if others else []
    calls, pct = (got["calls"][0], _percentiles({k: [v] for k, v in got["calls"][1].items()}, set())) if together \
        else (got["calls"], got.get("percentiles", {}))
    return calls, pct, got["closes"], got["evaluations"], got.get("centre", {}), extra


def _with_rollups(engine: Engine, conn: Any, q: m.Question, by: str, rolled: rollups.Prefix, tz: ZoneInfo,
                  percentiles: bool, others: bool) -> tuple[Any, ...]:
    """Every family's counts: the rolled-up days of the prefix, of the tickets settled before the
    instant's day; plus, read raw as of the instant, the rows there of the tickets open when their
    day was rolled up or settling on the instant's day or later, and every row after the prefix.
    The families are read side by side (``side_by_side``)."""
    import numpy as np

    hi = q.buckets[-1].end if q.buckets else q.end
    parts = [replace(q, span=Window(raw.start, raw.end), among=raw.among)
             for raw in rollups.raw_rows(conn, rolled, q.as_of, tz)]
    if hi is None or rolled.end < hi:  # every row after the prefix too
        last = parts[-1] if parts else None
        if last is not None and last.span is not None and last.span.end == rolled.end:
            # in the same statements as the prefix's last part, which ends where it starts
            parts[-1] = replace(last, span=Window(last.span.start, hi), among=rollups.or_after(last.among, rolled.end))
        else:
            parts.append(replace(q, span=Window(rolled.end, hi)))
    raw_from = parts[0].span.start if parts and parts[0].span else None  # no raw row is earlier
    roles = by == "department"  # (elsewhere a group's roles are only added up)

    def on(read: Callable[..., Any], part: m.Question, **more: Any) -> Callable[[Any], Any]:
        return lambda c: read(c, part, by, **more)

    # the raw rows first: each is PostgreSQL's work more than this process's, and the rollups'
    # rows, turned into counts here, then come in while they are worked on
    readers: dict[Any, Callable[[Any], Any]] = {}
    for i, part in enumerate(parts):
        readers[("calls", i)] = on(m.call_counts_and_minutes if percentiles else _without_minutes, part, roles=roles)
        if by != "department":
            readers[("centre", i)] = on(m.centre_counts, part)
        readers[("closes", i)] = on(m.close_counts, part)
        readers[("evaluations", i)] = on(m.evaluation_counts, part, firsts=True)
        if others:
            readers[("closed", i)] = on(m.closed_counts, part)
            readers[("escalations", i)] = on(m.escalation_counts, part)
    readers |= rollups.rolled_readers(q, by, rolled, tz, raw_from, roles=roles)
    if not percentiles:
        del readers["minutes"]
    if not others:
        readers.pop("closed", None)
        readers.pop("escalations", None)
    got = side_by_side(engine, conn, readers)

    calls, closes = got["calls"], got["closes"]
    evals, firsts, no_firsts = got["evaluations"], got["firsts"], {"tickets_evaluated": 0, "reopened": 0}
    for g, v in evals.items():  # (each group's dict is this question's own: filled in place)
        v.update(firsts.get(g, no_firsts))
    centre = got.get("centre", {})
    extra = [got["closed"], got["escalations"]] if others else []
    rolled_minutes = got.get("minutes", rollups.Minutes())
    minutes: dict[tuple[Any, str], list[Any]] = {k: [np.frombuffer(b, dtype=np.float64) for b, _ in blobs]
                                                for k, blobs in rolled_minutes.chunks.items()}
    # a group's minutes from one rolled-up row alone are sorted already: its ranks are read off
    ordered = {k for k, blobs in rolled_minutes.chunks.items() if len(blobs) == 1 and blobs[0][1]}
    for i in range(len(parts)):
        raw_calls, values = got[("calls", i)]
        _add(calls, raw_calls)
        for key, found in values.items():
            minutes.setdefault(key, []).append(np.asarray(found, dtype=np.float64))
        _add(closes, got[("closes", i)])
        _add(evals, got[("evaluations", i)])
        if by != "department":
            _add(centre, got[("centre", i)])
        if others:
            _add(extra[0], got[("closed", i)])
            _add(extra[1], got[("escalations", i)])
    pct = _percentiles(minutes, ordered) if percentiles else {}
    names: dict[str, tuple[str, str]] = {}
    for (group, metric), (p50, p90) in rolled_minutes.picked.items():  # no raw row reaches them
        k50, k90 = names.get(metric) or names.setdefault(metric, (f"{metric}_p50", f"{metric}_p90"))
        mine = pct.get(group)
        if mine is None:
            pct[group] = {k50: p50, k90: p90}
        else:
            mine[k50], mine[k90] = p50, p90
    return calls, pct, closes, evals, centre, extra


def _percentiles(minutes: dict[tuple[Any, str], list[Any]], ordered: set[Any]) -> dict[Any, dict[str, Any]]:
    """Nearest-rank p50 / p90 of each (group, metric)'s minutes, in chunks (``ordered``: the keys
    whose one chunk is sorted already)."""
    import numpy as np

    pct: dict[Any, dict[str, Any]] = {}
    for (group, metric), chunks in minutes.items():
        merged: Any = np.concatenate(chunks) if len(chunks) > 1 else np.asarray(chunks[0], dtype=np.float64)
        n = len(merged)
        if n:
            k50, k90 = m.ranks(n)
            chosen = merged if len(chunks) == 1 and (group, metric) in ordered else np.partition(merged, [k50, k90])
            pct.setdefault(group, {}).update({f"{metric}_p50": float(chosen[k50]),
                                              f"{metric}_p90": float(chosen[k90])})
    return pct


def _without_minutes(conn: Any, q: m.Question, by: str, roles: bool = True) -> tuple[Any, dict[Any, Any]]:
    return m.call_counts(conn, q, by, roles=roles), {}


def envelope(*, by: str, period: str | None, as_of: datetime, start: datetime | None, end: datetime | None,
             settings: Settings, rows: list[dict[str, Any]], street: str | None,
             community: str | None) -> dict[str, Any]:
    """The result around the rows: the question asked, the settings used, the scope."""
    result: dict[str, Any] = {"by": by, "period": period, "as_of": as_of.isoformat(),
                              "from": start.isoformat() if start else None, "to": end.isoformat() if end else None,
                              "settings": {"basically_satisfied_weight": settings.basically_satisfied_weight,
                                           "composite_weights": list(settings.composite_weights),
                                           "min_evaluated": settings.min_evaluated},
                              "rows": rows}
    if street or community:
        result["scope"] = {"street": street, "community": community}
    return result


def _cooperation(counts: dict[tuple[str, int, str], dict[str, Any]], reference: Reference,
                 settings: Settings) -> list[dict[str, Any]]:
    """Cooperating departments (吹哨报到's 协办), ranked on their own report-in: on-time rate
    over their cooperating calls judged in the window (at least ``min_evaluated`` of them),
    then the mean time to report in. ``counts``: the period's call counts by department."""
    rows = []
    for (dept, _bucket, role), n in sorted(counts.items()):
        if role != "cooperating":
            continue
        f = call_figures(add_counts([n]), {})
        judged = f["ack_on_time"] + f["ack_late"]
        if judged >= settings.min_evaluated and f["ack_on_time_rate"] is not None:
            rows.append({"department": dept, "name": _name(reference, "department", dept), "calls": f["dispatched"],
                         "judged": judged, "ack_on_time_rate": f["ack_on_time_rate"],
                         "mtta_minutes_mean": f["mtta_minutes_mean"]})
    rows.sort(key=lambda r: (-r["ack_on_time_rate"], r["mtta_minutes_mean"] or 0, r["department"]))
    return [{"rank": n, **r} for n, r in enumerate(rows, 1)]


def _ranking(rows: list[dict[str, Any]], by: str, settings: Settings) -> list[dict[str, Any]]:
    """The scorecard: units with at least ``min_evaluated`` evaluated tickets, best composite first."""
    eligible = [r for r in rows if r["evaluated"] >= settings.min_evaluated and r["composite"] is not None]
    eligible.sort(key=lambda r: (-r["composite"], -(r["handle_on_time_rate"] or 0), r[by]))
    return [{"rank": n, by: r[by], "name": r["name"], "composite": r["composite"], "evaluated": r["evaluated"],
             "ack_on_time_rate": r["ack_on_time_rate"], "handle_on_time_rate": r["handle_on_time_rate"],
             "close_on_time_rate": r["close_on_time_rate"]} for n, r in enumerate(eligible, 1)]


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None
