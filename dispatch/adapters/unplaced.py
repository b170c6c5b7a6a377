"""Reports waiting to be placed (待定位): an Open311 report that gives only an address in words
(``address_string``), no position and no grid, cannot become a ticket yet — a ticket lives in a
grid. It waits here, under the token its sender was given, until a dispatcher places it on a
grid (``dispatch.service.actions.place``); the report then made keeps the time it was received as its
business time, so its SLA clock runs from the report, not from the placing.

A row holds the report's fields as the sender gave them (the reporter's contact sealed by the
vault, as in an event), who sent it and from which area, and once placed: the grid, who placed
it, when, and the ticket it became — the placing is recorded here and in the audit log.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Column, Engine, MetaData, String, Table, Text, insert, select, update

from dispatch.adapters.database import ensure_created

__all__ = ["add", "claim", "ensure_table", "get", "release", "settle", "unplaced_reports", "waiting", "waiting_tokens"]

METADATA = MetaData()
unplaced_reports = Table(
    "unplaced_reports", METADATA,
    Column("token", String(40), primary_key=True),
    Column("received_at", String(40), nullable=False, index=True),  # ISO-8601: the report's business time
    Column("sender", Text, nullable=False),  # the identity that sent it, as JSON (name, role, scope)
    Column("district", String(100)),  # the sender's district, if it has one: whose queue it joins
    Column("fields", Text, nullable=False),  # the report's fields as JSON (reporter sealed)
    Column("placed_at", String(40), index=True),  # None: waiting (found through the index, however many were placed)
    Column("placed_by", String(100)),
    Column("grid", String(100)),
    Column("ticket_id", String(60)),
    Column("command_id", String(200)),
)


def ensure_table(engine: Engine) -> None:
    ensure_created(engine, METADATA, indexes=True)  # (the index on placed_at came after the table)


def add(engine: Engine, token: str, received_at: str, sender: dict[str, Any], district: str | None,
        fields: dict[str, Any]) -> None:
    ensure_table(engine)
    with engine.begin() as conn:
        conn.execute(insert(unplaced_reports).values(
            token=token, received_at=received_at, sender=json.dumps(sender, ensure_ascii=False), district=district,
            fields=json.dumps(fields, ensure_ascii=False)))


def _row(r: Any) -> dict[str, Any]:
    return {"token": r.token, "received_at": r.received_at, "sender": json.loads(r.sender), "district": r.district,
            "fields": json.loads(r.fields), "placed_at": r.placed_at, "placed_by": r.placed_by, "grid": r.grid,
            "ticket_id": r.ticket_id, "command_id": r.command_id}


def get(engine: Engine, token: str) -> dict[str, Any] | None:
    ensure_table(engine)
    with engine.connect() as conn:
        r = conn.execute(select(unplaced_reports).where(unplaced_reports.c.token == token)).first()
    return None if r is None else _row(r)


def waiting(engine: Engine, districts: tuple[str, ...] | None, limit: int = 100) -> list[dict[str, Any]]:
    """The reports not yet placed, oldest first: of ``districts`` (and those of no district), or all."""
    ensure_table(engine)
    c = unplaced_reports.c
    query = select(unplaced_reports).where(c.placed_at.is_(None)).order_by(c.received_at).limit(limit)
    if districts is not None:
        query = query.where(c.district.in_(districts) | c.district.is_(None))
    with engine.connect() as conn:
        return [_row(r) for r in conn.execute(query)]


def waiting_tokens(engine: Engine) -> set[str]:
    """Every report still waiting to be placed, by token (the live pages' watcher compares two)."""
    ensure_table(engine)
    c = unplaced_reports.c
    with engine.connect() as conn:
        return {token for (token,) in conn.execute(select(c.token).where(c.placed_at.is_(None)))}


def claim(engine: Engine, token: str, *, placed_at: str, placed_by: str, grid: str) -> bool:
    """Take the report to place it; False if it is not waiting (placed by another dispatcher first)."""
    c = unplaced_reports.c
    with engine.begin() as conn:
        done = conn.execute(update(unplaced_reports).where(c.token == token, c.placed_at.is_(None)).values(
            placed_at=placed_at, placed_by=placed_by, grid=grid))
    return bool(done.rowcount)


def settle(engine: Engine, token: str, *, ticket_id: str | None, command_id: str | None) -> None:
    """The ticket the placed report became (Kafka mode: the command to look it up by)."""
    with engine.begin() as conn:
        conn.execute(update(unplaced_reports).where(unplaced_reports.c.token == token).values(
            ticket_id=ticket_id, command_id=command_id))


def release(engine: Engine, token: str) -> None:
    """A placing that was refused: the report waits again."""
    with engine.begin() as conn:
        conn.execute(update(unplaced_reports).where(unplaced_reports.c.token == token).values(
            placed_at=None, placed_by=None, grid=None))
