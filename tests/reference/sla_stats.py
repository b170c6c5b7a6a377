"""The reference (the Python path the SQL replaced): SLA statistics by department, category, community or street, optionally per day/week/month,
and the scorecard ranking (考核) built from them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from dispatch.domain.errors import DispatchError
from tests.reference.facts import load_facts
from tests.reference.figures import (Settings, Window, call_figures, centre_figures, close_figures, close_items,
                                     evaluation_figures, handle_figures, latest_evaluations)
from dispatch.domain.reference import Reference
from dispatch.domain.sla_policy import SlaPolicy
from dispatch.projections.sla_stats import (DIMENSIONS, PERIODS, _clip, _iso, _name, _ranking, buckets,
                                            envelope)

__all__ = ["sla_statistics"]


def sla_statistics(engine: Engine, reference: Reference, *, by: str, as_of: datetime, period: str | None = None,
                   start: datetime | None = None, end: datetime | None = None,
                   settings: Settings | None = None, street: str | None = None,
                   community: str | None = None) -> dict[str, Any]:
    """SLA figures grouped ``by`` a dimension; ``street`` / ``community`` (ids) limit them to
    that unit's tickets."""
    if by not in DIMENSIONS:
        raise DispatchError(f"cannot group SLA statistics by {by!r}; one of {', '.join(DIMENSIONS)}")
    if period is not None and period not in PERIODS:
        raise DispatchError(f"unknown period {period!r}; one of {', '.join(PERIODS)}")
    settings = settings or Settings()
    facts = load_facts(engine, as_of, street=street, community=community, start=start, end=end)
    policy, window = SlaPolicy(reference), Window(start, end)
    closes, latest = close_items(facts), latest_evaluations(facts.evaluations)

    def attr(tid: str) -> str:
        return str(getattr(facts.tickets[tid], by))

    call_key: Callable[[Any], str] = (lambda c: c.department) if by == "department" else (lambda c: attr(c.ticket_id))
    close_key: Callable[[Any], str] = ((lambda i: i.department) if by == "department"
                                       else (lambda i: attr(i.ticket.ticket_id)))
    eval_key: Callable[[Any], str] = ((lambda e: e.department or "") if by == "department"
                                      else (lambda e: attr(e.ticket_id)))
    keys = sorted({call_key(c) for c in facts.calls} | {eval_key(e) for e in facts.evaluations}
                  | (set() if by == "department" else {attr(tid) for tid in facts.tickets}))
    windows: list[tuple[str | None, Window]] = [(None, window)]
    if period is not None:
        times = [c.dispatched_at for c in facts.calls] + [e.at for e in facts.evaluations]
        first = start or (min(times) if times else as_of)
        last = min(as_of, end - timedelta(microseconds=1)) if end else as_of
        tz = ZoneInfo(reference.timezone)
        windows = [(label, _clip(window, w)) for label, w in buckets(first, last, period, tz)]
    rows = []
    for key in keys:
        calls = [c for c in facts.calls if call_key(c) == key]
        items = [i for i in closes if close_key(i) == key]
        evals = [e for e in facts.evaluations if eval_key(e) == key]
        lasts = [e for e in latest if eval_key(e) == key]
        for label, w in windows:
            figures = {**call_figures(calls, w, as_of, policy), **handle_figures(calls, w, as_of, policy),
                       **close_figures(items, w, as_of), **evaluation_figures(lasts, evals, w, settings)}
            if by != "department":  # the centre's own steps belong to places, not departments
                figures |= centre_figures([tk for tk in facts.tickets.values() if attr(tk.ticket_id) == key], w,
                                          as_of)
            if label is not None and not (figures["dispatched"] or figures["tickets_evaluated"]):
                continue
            period_info = {} if label is None else {"period": label, "period_start": _iso(w.start), "period_end": _iso(w.end)}
            rows.append({by: key, "name": _name(reference, by, key), **period_info, **figures})
    result = envelope(by=by, period=period, as_of=as_of, start=start, end=end, settings=settings, rows=rows,
                      street=street, community=community)
    if period is None:
        result["ranking"] = _ranking(rows, by, settings)
        if by == "department":
            result["cooperation_ranking"] = _cooperation(facts.calls, window, as_of, policy, reference, settings)
    return result


def _cooperation(calls: list[Any], window: Window, as_of: datetime, policy: SlaPolicy, reference: Reference,
                 settings: Settings) -> list[dict[str, Any]]:
    """Cooperating departments (吹哨报到's 协办), ranked on their own report-in: on-time rate
    over their cooperating calls judged in the window (at least ``min_evaluated`` of them),
    then the mean time to report in."""
    rows = []
    for dept in sorted({c.department for c in calls if c.role == "cooperating"}):
        mine = [c for c in calls if c.role == "cooperating" and c.department == dept]
        f = call_figures(mine, window, as_of, policy)
        judged = f["ack_on_time"] + f["ack_late"]
        if judged >= settings.min_evaluated and f["ack_on_time_rate"] is not None:
            rows.append({"department": dept, "name": _name(reference, "department", dept), "calls": f["dispatched"],
                         "judged": judged, "ack_on_time_rate": f["ack_on_time_rate"],
                         "mtta_minutes_mean": f["mtta_minutes_mean"]})
    rows.sort(key=lambda r: (-r["ack_on_time_rate"], r["mtta_minutes_mean"] or 0, r["department"]))
    return [{"rank": n, **r} for n, r in enumerate(rows, 1)]
