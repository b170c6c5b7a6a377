"""What a dashboard page shows, as one read use case used by the web (pages, big screen, live
updates): the figures of ``dashboard`` (the same function the CLI calls), the departments'
scorecard (``sla --by department`` of the place), the trend per day, open work per grid for
the map and the newest tickets — all as of one instant, for one period, with the names a
person reads beside every id.

Periods are local calendar periods of the reference data's time zone that hold the instant:
``today`` (今日), ``week`` (本周, from Monday), ``month`` (本月) — the same figures as
``dispatch dashboard --from <period start> --to <period end> --as-of <instant>``. (The whole
history is the CLI's question: its cost grows with the history, a page's must not.)
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dispatch.domain.errors import InvalidCommand
from dispatch.domain.identity import Identity
from dispatch.service import queries

__all__ = ["PERIODS", "board", "changes", "period_window"]

PERIODS = {"today": "今日", "week": "本周", "month": "本月"}


def period_window(runtime: Any, period: str, as_of: datetime | None = None) -> queries.Window:
    """The local period ``period`` that holds the instant (default: now), and the instant."""
    if period not in PERIODS:
        raise InvalidCommand(f"unknown period {period!r}; one of {', '.join(PERIODS)}")
    instant = as_of or runtime.clock.now()
    tz = ZoneInfo(runtime.reference.timezone)
    local = instant.astimezone(tz)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "today":
        start, end = day, day + timedelta(days=1)
    elif period == "week":
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=7)
    else:
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
    # local midnights: re-attach the zone so a day across a DST change is still a calendar day
    return queries.Window(start.replace(tzinfo=tz), end.replace(tzinfo=tz), instant)


def board(runtime: Any, identity: Identity, *, street: str | None = None, community: str | None = None,
          period: str = "month", as_of: datetime | None = None) -> dict[str, Any]:
    """Everything a dashboard page shows (see the module). The families of figures are
    independent reads, asked at once on their own connections (after one catch-up, or one wait
    for the process's projector: ``projections.for_reading``)."""
    from concurrent.futures import ThreadPoolExecutor

    from dispatch.projections import panels as b
    from dispatch.projections import for_reading
    from dispatch.service.access import may_view

    ref, engine = runtime.reference, runtime.engine
    if (street is None) == (community is None):
        raise InvalidCommand("give exactly one of a street or a community")
    place = {"community": ref.community(community).id} if community else {"street": ref.street(street).id}
    may_view(identity, "dashboard", **queries.place_of(runtime, place.get("street"), place.get("community")))
    window = period_window(runtime, period, as_of)
    assert window.start is not None and window.end is not None
    for_reading(runtime)
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="board") as pool:
        figures_ = pool.submit(queries.dashboard, runtime, period=window, identity=identity, **place)
        scorecard_ = pool.submit(queries.sla, runtime, by="department", period=window, identity=identity,
                                 percentiles=False, **place)
        trend_ = pool.submit(b.daily, engine, ref.timezone, as_of=window.as_of, start=window.start, end=window.end,
                             **place)
        grids = b.per_grid(engine, window.as_of, **place)
        latest = b.latest(engine, window.as_of, **place)
        markers = b.reports(engine, window.as_of, **place)
        figures, scorecard, trend = figures_.result(), scorecard_.result(), trend_.result()
    names = _Names(ref)
    return {
        "period": period, "period_name": PERIODS[period], "as_of": window.as_of.isoformat(),
        "from": window.start.isoformat(), "to": window.end.isoformat(),
        "figures": figures,
        "scorecard": [{**row, "name": names("departments", row["department"])} for row in scorecard["rows"]],
        "ranking": scorecard.get("ranking", []),
        "trend": trend,
        "grids": grids,
        "latest": [{**row, "ticket_id": str(row["ticket_id"]), "category_name": names("categories", row["category"]),
                    "grid_name": names("grids", row["grid"]), "community_name": names("communities", row["community"]),
                    "reported_at": row["reported_at"].isoformat()} for row in latest],
        "reports": _markers(ref, markers, window.as_of),
        "names": {"categories": {k: v.name for k, v in ref.categories.items()},
                  "grids": {g.id: g.name for g in _grids_of(ref, **place)}},
    }


# which deadline an open ticket is working to, by its status then (centre: the centre's time basis)
_WORKING_TO = {"reported": ("accept_due", "centre"), "accepted": ("dispatch_due", "centre"),
               "reopened": ("dispatch_due", "centre"), "awaiting_redispatch": ("dispatch_due", "centre"),
               "dispatched": ("ack_due", "call"), "in_progress": ("handle_due", "call"),
               "handled": ("feedback_due", "call")}


def _markers(ref: Any, rows: list[dict[str, Any]], as_of: datetime) -> list[dict[str, Any]]:
    """The map's markers: case number, category, status, time left — nothing personal (no
    description, no reporter), positions as recorded (WGS-84)."""
    from dispatch.domain.sla_policy import SlaPolicy

    policy, names, out = SlaPolicy(ref), _Names(ref), []
    for row in rows:
        column, kind = _WORKING_TO.get(row["status"] or "", (None, None))
        due = row.get(column) if column else None
        basis = row["centre_basis"] if kind == "centre" else row["time_basis"]
        left = queries.minutes_left(policy, basis, as_of, due) if due is not None else None
        out.append({"ticket_id": str(row["ticket_id"]), "case_no": row["case_no"], "lat": row["lat"], "lon": row["lon"],
                    "category_name": names("categories", row["category"]), "grid_name": names("grids", row["grid"]),
                    "status": row["status"], "minutes_left": None if left is None else round(left),
                    "overdue": left is not None and left < 0})
    return out


def changes(runtime: Any) -> tuple[int, int]:
    """Where the read models stand (a live page asks again when this moves; it holds no data)."""
    from dispatch.projections.panels import signature

    return signature(runtime.engine)


def _grids_of(ref: Any, street: str | None = None, community: str | None = None) -> list[Any]:
    if community is not None:
        return list(ref.grids_of_community(community))
    return [g for c in ref.communities_of_street(street) for g in ref.grids_of_community(c.id)]


class _Names:
    def __init__(self, reference: Any):
        self.r = reference

    def __call__(self, kind: str, key: str | None) -> str:
        table = getattr(self.r, kind)
        return table[key].name if key in table else "—"
