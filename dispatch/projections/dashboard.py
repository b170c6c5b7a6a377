"""Community and street dashboards, computed from the facts as of an instant."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from dispatch.aggregates.ticket import TERMINAL
from dispatch.ladder import LEVELS
from dispatch.projections.facts import Facts, load_facts
from dispatch.projections.figures import (Settings, Window, centre_figures, evaluation_figures, first_contact_figures,
                                          latest_evaluations, on_or_before)
from dispatch.reference import Reference

__all__ = ["community_dashboard", "street_dashboard", "summarize"]


def summarize(facts: Facts, ticket_ids: set[str], window: Window, settings: Settings) -> dict[str, Any]:
    """The dashboard figures of the tickets ``ticket_ids``."""
    as_of = facts.as_of
    tickets = [facts.tickets[i] for i in ticket_ids]
    is_open = {tk.ticket_id: tk.state not in TERMINAL for tk in tickets}
    reported = [tk for tk in tickets if window.contains(tk.reported_at)]
    current = [c for c in facts.calls if c.ticket_id in ticket_ids and c.superseded_at is None and is_open[c.ticket_id]]
    escalated = [e for e in facts.escalations if e.ticket_id in ticket_ids and e.raised and window.contains(e.at)]
    evaluations = [e for e in facts.evaluations if e.ticket_id in ticket_ids]
    by_state = Counter(tk.state for tk in tickets if is_open[tk.ticket_id])
    return {
        "open": sum(by_state.values()),
        "open_by_state": dict(sorted(by_state.items())),
        "reported": len(reported),
        "closed": sum(1 for tk in tickets if tk.closed_at is not None and window.contains(tk.closed_at)),
        "ack_overdue": sum(1 for c in current if c.answered_at is None and c.ack_due < as_of),
        "handle_overdue": sum(1 for c in current if c.role == "lead" and c.answer != "rejected"
                              and c.handled_at is None and on_or_before(c.handle_due, as_of, strict=True)),
        "by_category": dict(sorted(Counter(tk.category for tk in reported).items())),
        "by_channel": dict(sorted(Counter(tk.channel for tk in reported).items())),
        "escalations": len(escalated),
        "escalations_by_level": {lvl: sum(1 for e in escalated if e.to_level == lvl) for lvl in LEVELS[1:]},
        "open_above_grid": sum(1 for tk in tickets if is_open[tk.ticket_id] and tk.level != LEVELS[0]),
        **centre_figures(tickets, window, as_of),
        **first_contact_figures(tickets, window),
        **evaluation_figures(latest_evaluations(evaluations), evaluations, window, settings),
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
    facts = load_facts(engine, as_of, community=c.id, start=start, end=end)
    grids = []
    for g in reference.grids_of_community(c.id):
        ids = {i for i, tk in facts.tickets.items() if tk.grid == g.id}
        grids.append({"grid": g.id, "name": g.name, **summarize(facts, ids, window, settings)})
    return {"community": c.id, "name": c.name, "street": c.street_id, **_header(as_of, window),
            **summarize(facts, set(facts.tickets), window, settings), "grids": grids}


def street_dashboard(engine: Engine, reference: Reference, street: str, *, as_of: datetime,
                     start: datetime | None = None, end: datetime | None = None,
                     settings: Settings | None = None) -> dict[str, Any]:
    settings = settings or Settings()
    s = reference.street(street)
    window = Window(start, end)
    facts = load_facts(engine, as_of, street=s.id, start=start, end=end)
    communities = []
    for c in reference.communities_of_street(s.id):
        ids = {i for i, tk in facts.tickets.items() if tk.community == c.id}
        communities.append({"community": c.id, "name": c.name, **summarize(facts, ids, window, settings)})
    eligible = [c for c in communities if c["evaluated"] >= settings.min_evaluated and c["composite"] is not None]
    eligible.sort(key=lambda c: (-c["composite"], -(c["satisfaction_rate"] or 0), c["community"]))
    ranking = [{"rank": n, "community": c["community"], "name": c["name"], "composite": c["composite"],
                "evaluated": c["evaluated"]} for n, c in enumerate(eligible, 1)]
    ranked = {r["community"] for r in ranking}
    return {"street": s.id, "name": s.name, "district": s.district_id, **_header(as_of, window),
            **summarize(facts, set(facts.tickets), window, settings), "communities": communities,
            "min_evaluated": settings.min_evaluated, "ranking": ranking,
            "unranked": [{"community": c["community"], "evaluated": c["evaluated"]}
                         for c in communities if c["community"] not in ranked]}
