"""What a live dashboard shows beside the figures of ``dashboard``: the trend per local day,
open work per grid (for the map) and the latest tickets — each as of an instant, read
through the place's time indexes, so a past instant shows what stood then.

- ``daily``: tickets reported, closed and escalated per local day of the period (the same
  definitions as the dashboard's ``reported``, ``closed`` and ``escalations``: docs/figures.md);
- ``per_grid``: ``open_work`` by grid;
- ``latest``: the newest tickets reported by the instant, each with its status then;
- ``signature``: where the read models stand (changes whenever any source moves on).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select

from dispatch.projections import measures as m
from dispatch.projections import tables as t
from dispatch.projections.open_work import open_work
from dispatch.projections.sla_stats import buckets

__all__ = ["daily", "latest", "per_grid", "reports", "signature"]


def daily(engine: Engine, timezone: str, *, as_of: datetime, start: datetime, end: datetime | None,
          street: str | None = None, community: str | None = None) -> list[dict[str, Any]]:
    """One row per local day from ``start`` to the instant (or ``end``): reported, closed, escalations."""
    last = min(as_of, end - timedelta(microseconds=1)) if end is not None else as_of
    if last < start:
        return []
    days = buckets(start, last, "day", ZoneInfo(timezone))
    q = m.Question(as_of, start, end, tuple(w for _, w in days), street=street, community=community)
    key = "community" if community is not None else "street"
    with engine.connect() as conn:
        reported = m.centre_counts(conn, q, key)
        closed = m.closed_counts(conn, q, key)
        escalated = m.escalation_counts(conn, q, key)
    rows = []
    for index, (label, _) in enumerate(days):
        rows.append({"day": label,
                     "reported": sum(v["reported"] for (_, b), v in reported.items() if b == index),
                     "closed": sum(n for (_, b), n in closed.items() if b == index),
                     "escalations": sum(n for (_, b, _), n in escalated.items() if b == index)})
    return rows


def per_grid(engine: Engine, as_of: datetime, *, street: str | None = None,
             community: str | None = None) -> dict[str, dict[str, Any]]:
    """Open work per grid of the place as of the instant (grids with none are absent)."""
    return open_work(engine, as_of, by="grid", street=street, community=community)


def latest(engine: Engine, as_of: datetime, *, street: str | None = None, community: str | None = None,
           limit: int = 8) -> list[dict[str, Any]]:
    """The newest tickets reported by the instant, with their status as of it."""
    tk, st = t.tickets.c, t.ticket_states
    state_then = (select(st.c.state).where(st.c.ticket_id == tk.ticket_id, st.c.at <= as_of)
                  .order_by(st.c.version.desc()).limit(1).correlate(t.tickets).scalar_subquery())
    place = [tk.street == street] if street is not None else []
    if community is not None:
        place.append(tk.community == community)
    query = (select(tk.ticket_id, tk.case_no, tk.category, tk.grid, tk.community, tk.channel, tk.reported_at,
                    state_then.label("status"))
             .where(*place, tk.reported_at <= as_of).order_by(tk.reported_at.desc(), tk.ticket_id.desc())
             .limit(limit))
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def signature(engine: Engine) -> tuple[int, int]:
    """(sum of every source's position, number of sources): moves whenever a read model does."""
    with engine.connect() as conn:
        total, sources = conn.execute(select(func.coalesce(func.sum(t.positions.c.position), 0),
                                             func.count()).select_from(t.positions)).one()
    return int(total), int(sources)


def reports(engine: Engine, as_of: datetime, *, street: str | None = None, community: str | None = None,
            limit: int = 2000) -> list[dict[str, Any]]:
    """The place's reports open at the instant that carry a position (the map's markers): each
    with its status then and the deadline it is working to (the centre's, a call's report-in, the
    lead's handling, the feedback), newest first, at most ``limit``."""
    tk, st, c = t.tickets.c, t.ticket_states, t.calls.c
    state_then = (select(st.c.state).where(st.c.ticket_id == tk.ticket_id, st.c.at <= as_of)
                  .order_by(st.c.version.desc()).limit(1).correlate(t.tickets).scalar_subquery())
    current = (c.ticket_id == tk.ticket_id, c.dispatch_no == tk.dispatch_no, c.superseded_at.is_(None))
    ack_due = select(func.min(c.ack_due)).where(*current, c.answer.is_(None)).correlate(t.tickets).scalar_subquery()
    handle_due = (select(c.handle_due).where(*current, c.role == "lead").limit(1)
                  .correlate(t.tickets).scalar_subquery())
    place = [tk.street == street] if street is not None else []
    if community is not None:
        place.append(tk.community == community)
    query = (select(tk.ticket_id, tk.case_no, tk.category, tk.grid, tk.lat, tk.lon, tk.reported_at,
                    tk.accept_due, tk.dispatch_due, tk.feedback_due, tk.centre_basis, tk.time_basis,
                    state_then.label("status"), ack_due.label("ack_due"), handle_due.label("handle_due"))
             .where(*place, tk.lat.is_not(None), tk.reported_at <= as_of,
                    (tk.ended_at.is_(None)) | (tk.ended_at > as_of))
             .order_by(tk.reported_at.desc(), tk.ticket_id.desc()).limit(limit))
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]
