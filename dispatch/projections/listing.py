"""The ticket list read model (``dispatch tickets``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, exists, func, select

from dispatch.domain.lifecycle import TERMINAL
from dispatch.projections import tables as t

__all__ = ["change_rows", "list_tickets", "open_versions"]


def list_tickets(engine: Engine, *, status: str | None = None, community: str | None = None,
                 street: str | None = None, grid: str | None = None, category: str | None = None,
                 department: str | None = None, limit: int = 50, offset: int = 0, external_ref: str | None = None,
                 scope: tuple[str, tuple[str, ...]] | None = None, ids: list[str] | None = None,
                 closed: bool | None = None, reported_from: datetime | None = None,
                 reported_to: datetime | None = None, reported_by: str | None = None,
                 extension_pending: bool = False, categories: list[str] | None = None,
                 statuses: list[str] | None = None, per_status: int | None = None) -> list[dict[str, Any]]:
    """Tickets newest first, filtered by exact ids; ``statuses``: any of these, and with
    ``per_status`` only the newest that many of each (several lists in one query: the
    console's); ``department`` = has a call to it (any dispatch);
    ``scope`` = ``(column, ids)``: only tickets whose place column (or department call) is one of ids;
    ``ids``: only these tickets; ``closed``: only ended (closed, cancelled, duplicate) or only open
    ones; ``reported_from`` (inclusive) / ``reported_to`` (exclusive). Each row has the
    description and its lead call's handling deadline (``handle_due``)."""
    t.ensure_tables(engine)
    tk = t.tickets.c
    query = select(tk.ticket_id, tk.status, tk.grid, tk.community, tk.street, tk.district, tk.category,
                   tk.priority, tk.channel, tk.reported_at, tk.closed_at, tk.level, tk.lead, tk.handled_by,
                   tk.satisfaction, tk.external_ref, tk.last_at, tk.last_version, tk.description, tk.case_no,
                   tk.held_since, tk.extension_minutes, tk.closed_via, tk.provisional, tk.lat, tk.lon, tk.photo,
                   select(t.calls.c.handle_due).where(t.calls.c.ticket_id == tk.ticket_id,
                                                      t.calls.c.dispatch_no == tk.dispatch_no,
                                                      t.calls.c.role == "lead").limit(1)
                   .scalar_subquery().label("handle_due"))
    if extension_pending:
        query = query.where(tk.extension_minutes.is_not(None))
    for column, value in ((tk.reported_by, reported_by), (tk.status, status), (tk.community, community),
                          (tk.street, street),
                          (tk.grid, grid), (tk.category, category), (tk.external_ref, external_ref)):
        if value is not None:
            query = query.where(column == value)
    if statuses is not None:
        query = query.where(tk.status.in_(statuses))
    if ids is not None:
        query = query.where(tk.ticket_id.in_(ids))
    if categories is not None:
        query = query.where(tk.category.in_(categories))
    if closed is not None:
        query = query.where(tk.status.in_(TERMINAL) if closed else tk.status.not_in(TERMINAL))
    if reported_from is not None:
        query = query.where(tk.reported_at >= reported_from)
    if reported_to is not None:
        query = query.where(tk.reported_at < reported_to)
    if department is not None:
        c = t.calls.c
        query = query.where(exists().where(c.ticket_id == tk.ticket_id, c.department == department))
    if scope is not None:
        where, allowed = scope
        if where == "department":
            c = t.calls.c
            query = query.where(exists().where(c.ticket_id == tk.ticket_id, c.department.in_(allowed)))
        else:
            query = query.where(tk[where].in_(allowed))
    if per_status is not None:
        rank = func.row_number().over(partition_by=tk.status, order_by=(tk.reported_at.desc(), tk.ticket_id))
        ranked = query.add_columns(rank.label("rank_in_status")).subquery()
        r = ranked.c
        query = (select(*[column for column in r if column.name != "rank_in_status"])
                 .where(r.rank_in_status <= per_status).order_by(r.reported_at.desc(), r.ticket_id))
    else:
        query = query.order_by(tk.reported_at.desc(), tk.ticket_id)
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query.limit(limit).offset(offset))]


def open_versions(engine: Engine) -> dict[str, int]:
    """Every open ticket's last version: the live pages' hub compares two of these to learn which
    tickets moved (its cost follows the open work, not the history)."""
    t.ensure_tables(engine)
    tk = t.tickets.c
    with engine.connect() as conn:
        return {str(row.ticket_id): int(row.last_version)
                for row in conn.execute(select(tk.ticket_id, tk.last_version).where(tk.status.not_in(TERMINAL)))}


def change_rows(engine: Engine, ids: list[str]) -> list[dict[str, Any]]:
    """The places, reporter and departments called of these tickets: who may see that they moved."""
    if not ids:
        return []
    t.ensure_tables(engine)
    tk, c = t.tickets.c, t.calls.c
    rows: dict[str, dict[str, Any]] = {}
    with engine.connect() as conn:
        for row in conn.execute(select(tk.ticket_id, tk.grid, tk.community, tk.street, tk.district, tk.lead,
                                       tk.reported_by, tk.last_version, tk.status).where(tk.ticket_id.in_(ids))):
            rows[str(row.ticket_id)] = {**row._mapping, "ticket_id": str(row.ticket_id), "calls": []}
        for call in conn.execute(select(c.ticket_id, c.department).where(c.ticket_id.in_(ids)).distinct()):
            rows[str(call.ticket_id)]["calls"].append({"department": call.department})
    return list(rows.values())
