"""Community and street dashboards as of an instant, computed in the database (``measures``):
one grouped query per family of figures for the whole place, split by community or grid."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine

from dispatch.domain.ladder import LEVELS
from dispatch.domain.reference import Reference
from dispatch.projections import measures as m
from dispatch.projections.figures import Settings, Window, centre_figures, evaluation_figures, first_contact_figures
from dispatch.projections.open_work import counted, open_work_readers, total
from dispatch.projections.side_by_side import side_by_side

__all__ = ["community_dashboard", "community_ranking", "street_dashboard"]


class _Counts:
    """Every count a dashboard shows, per unit (community or grid) of one place."""

    def __init__(self, engine: Engine, q: m.Question, by: str):
        readers: dict[str, Callable[[Connection], Any]] = {  # the open work's first: the dearest
            **open_work_readers(q.as_of, by=by, street=q.street, community=q.community),
            "reported": lambda conn: m.centre_counts(conn, q, by, detail=True),
            "closed": lambda conn: m.closed_counts(conn, q, by),
            "escalations": lambda conn: m.escalation_counts(conn, q, by),
            "evaluations": lambda conn: m.evaluation_counts(conn, q, by)}
        with engine.connect() as conn:
            got = side_by_side(engine, conn, readers)
        self.reported, self.closed = got.pop("reported"), got.pop("closed")
        self.escalations, self.evaluations = got.pop("escalations"), got.pop("evaluations")
        self.work = counted(got)

    def summary(self, unit: str | None, settings: Settings) -> dict[str, Any]:
        """The figures of ``unit`` (None: the whole place: every unit's counts together)."""
        def mine(key: Any) -> bool:
            return unit is None or key == unit

        reported = m.reported_counts({g: v for g, v in self.reported.items() if mine(g[0])}, None)
        evaluations: dict[str, int] = {}
        for (key, _), counts in self.evaluations.items():
            if mine(key):
                for name, n in counts.items():
                    evaluations[name] = evaluations.get(name, 0) + n
        escalated = {lvl: sum(n for (key, _, level), n in self.escalations.items() if mine(key) and level == lvl)
                     for lvl in LEVELS[1:]}
        work = self.work.get(unit, total([])) if unit is not None else total(list(self.work.values()))
        modes = reported["first_contact_by_mode"]
        return {
            "open": work["open"],
            "open_by_state": work["open_by_state"],
            "reported": reported.get("reported", 0),
            "closed": sum(n for (key, _), n in self.closed.items() if mine(key)),
            "ack_overdue": work["ack_overdue"],
            "handle_overdue": work["handle_overdue"],
            "by_category": reported["by_category"],
            "by_channel": reported["by_channel"],
            "escalations": sum(escalated.values()),
            "escalations_by_level": escalated,
            "open_above_grid": work["open_above_grid"],
            **centre_figures(reported),
            **first_contact_figures(reported.get("reported", 0), modes),
            **evaluation_figures(evaluations, settings),
        }


def _header(as_of: datetime, window: Window) -> dict[str, Any]:
    return {"as_of": as_of.isoformat(), "from": window.start.isoformat() if window.start else None,
            "to": window.end.isoformat() if window.end else None}


def community_dashboard(engine: Engine, reference: Reference, community: str, *, as_of: datetime,
                        start: datetime | None = None, end: datetime | None = None,
                        settings: Settings | None = None) -> dict[str, Any]:
    settings = settings or Settings()
    c = reference.community(community)
    window = Window(start, end)
    counts = _Counts(engine, m.Question(as_of, start, end, community=c.id), "grid")
    grids = [{"grid": g.id, "name": g.name, **counts.summary(g.id, settings)}
             for g in reference.grids_of_community(c.id)]
    return {"community": c.id, "name": c.name, "street": c.street_id, **_header(as_of, window),
            **counts.summary(None, settings), "grids": grids}


def street_dashboard(engine: Engine, reference: Reference, street: str, *, as_of: datetime,
                     start: datetime | None = None, end: datetime | None = None,
                     settings: Settings | None = None) -> dict[str, Any]:
    settings = settings or Settings()
    s = reference.street(street)
    window = Window(start, end)
    counts = _Counts(engine, m.Question(as_of, start, end, street=s.id), "community")
    communities = [{"community": c.id, "name": c.name, **counts.summary(c.id, settings)}
                   for c in reference.communities_of_street(s.id)]
    return {"street": s.id, "name": s.name, "district": s.district_id, **_header(as_of, window),
            **counts.summary(None, settings), "communities": communities, **community_ranking(communities, settings)}


def community_ranking(communities: list[dict[str, Any]], settings: Settings) -> dict[str, Any]:
    """A street's communities ranked (best composite first; ties: satisfaction, then id), those
    with fewer than ``min_evaluated`` evaluated tickets listed apart."""
    eligible = [c for c in communities if c["evaluated"] >= settings.min_evaluated and c["composite"] is not None]
    eligible.sort(key=lambda c: (-c["composite"], -(c["satisfaction_rate"] or 0), c["community"]))
    ranking = [{"rank": n, "community": c["community"], "name": c["name"], "composite": c["composite"],
                "evaluated": c["evaluated"]} for n, c in enumerate(eligible, 1)]
    ranked = {r["community"] for r in ranking}
    return {"min_evaluated": settings.min_evaluated, "ranking": ranking,
            "unranked": [{"community": c["community"], "evaluated": c["evaluated"]}
                         for c in communities if c["community"] not in ranked]}
