"""The reference (the Python path the SQL replaced, kept to hold ``dispatch.projections.measures``
to it). Community and street dashboards, computed from the facts as of an instant."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from dispatch.domain.ladder import LEVELS
from tests.reference.facts import Facts, load_facts
from dispatch.projections.open_work import open_work, total
from tests.reference.figures import (Settings, Window, centre_figures, evaluation_figures, first_contact_figures,
                                     latest_evaluations)
from dispatch.domain.reference import Reference
from dispatch.projections.dashboard import _header, community_ranking

__all__ = ["community_dashboard", "street_dashboard", "summarize"]


def summarize(facts: Facts, ticket_ids: set[str], window: Window, settings: Settings,
              work: dict[str, Any]) -> dict[str, Any]:
    """The dashboard figures of the tickets ``ticket_ids``; their open work (``work``:
    ``dispatch.projections.open_work``) is counted in the database."""
    tickets = [facts.tickets[i] for i in ticket_ids]
    reported = [tk for tk in tickets if window.contains(tk.reported_at)]
    escalated = [e for e in facts.escalations if e.ticket_id in ticket_ids and e.raised and window.contains(e.at)]
    evaluations = [e for e in facts.evaluations if e.ticket_id in ticket_ids]
    return {
        "open": work["open"],
        "open_by_state": work["open_by_state"],
        "reported": len(reported),
        "closed": sum(1 for tk in tickets if tk.closed_at is not None and window.contains(tk.closed_at)),
        "ack_overdue": work["ack_overdue"],
        "handle_overdue": work["handle_overdue"],
        "by_category": dict(sorted(Counter(tk.category for tk in reported).items())),
        "by_channel": dict(sorted(Counter(tk.channel for tk in reported).items())),
        "escalations": len(escalated),
        "escalations_by_level": {lvl: sum(1 for e in escalated if e.to_level == lvl) for lvl in LEVELS[1:]},
        "open_above_grid": work["open_above_grid"],
        **centre_figures(tickets, window, facts.as_of),
        **first_contact_figures(tickets, window),
        **evaluation_figures(latest_evaluations(evaluations), evaluations, window, settings),
    }


def community_dashboard(engine: Engine, reference: Reference, community: str, *, as_of: datetime,
                        start: datetime | None = None, end: datetime | None = None,
                        settings: Settings | None = None) -> dict[str, Any]:
    settings = settings or Settings()
    c = reference.community(community)
    window = Window(start, end)
    facts = load_facts(engine, as_of, community=c.id, start=start, end=end)
    work = open_work(engine, as_of, by="grid", community=c.id)
    grids = []
    for g in reference.grids_of_community(c.id):
        ids = {i for i, tk in facts.tickets.items() if tk.grid == g.id}
        grids.append({"grid": g.id, "name": g.name, **summarize(facts, ids, window, settings, work.get(g.id, total([])))})
    return {"community": c.id, "name": c.name, "street": c.street_id, **_header(as_of, window),
            **summarize(facts, set(facts.tickets), window, settings, total(list(work.values()))), "grids": grids}


def street_dashboard(engine: Engine, reference: Reference, street: str, *, as_of: datetime,
                     start: datetime | None = None, end: datetime | None = None,
                     settings: Settings | None = None) -> dict[str, Any]:
    settings = settings or Settings()
    s = reference.street(street)
    window = Window(start, end)
    facts = load_facts(engine, as_of, street=s.id, start=start, end=end)
    work = open_work(engine, as_of, by="community", street=s.id)
    communities = []
    for c in reference.communities_of_street(s.id):
        ids = {i for i, tk in facts.tickets.items() if tk.community == c.id}
        communities.append({"community": c.id, "name": c.name,
                            **summarize(facts, ids, window, settings, work.get(c.id, total([])))})
    return {"street": s.id, "name": s.name, "district": s.district_id, **_header(as_of, window),
            **summarize(facts, set(facts.tickets), window, settings, total(list(work.values()))),
            "communities": communities, **community_ranking(communities, settings)}
