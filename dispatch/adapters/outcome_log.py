"""The command log: what became of each command a door received (the HTTP API, the CLI:
its actor has ``received_at``) that carried a ``command_id`` — applied
(ticket, event, new version) or refused (code, sentence) — written by the Kafka engine in
the same transaction as the events and the partition position it caused
(``eventstore.WithOutcomes``),
read by the HTTP API in Kafka mode to answer a client with the outcome of its command.

One row per command id; the first outcome stays (a repeat is refused as a duplicate and
changes nothing here)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, Text, select

from dispatch.adapters.database import ensure_created

__all__ = ["COLUMNS", "OUTCOME_TYPES", "command_outcomes", "ensure_table", "lookup", "row_of"]

METADATA = MetaData()
command_outcomes = Table(
    "command_outcomes", METADATA,
    Column("command_id", String(100), primary_key=True),
    Column("actor_id", String(200), nullable=False),
    Column("type", String(30), nullable=False),
    Column("ticket_id", String(36)),
    Column("outcome", String(10), nullable=False),  # applied | refused
    Column("event", String(40)),
    Column("version", Integer),
    Column("code", String(60)),
    Column("message", Text),
    Column("occurred_at", String(40), nullable=False),  # ISO-8601, as on the wire
    Column("received_at", String(40)),
)
COLUMNS = tuple(c.name for c in command_outcomes.columns)
OUTCOME_TYPES = ("text", "text", "text", "text", "text", "text", "integer", "text", "text", "text", "text")  # PostgreSQL


def ensure_table(engine: Engine) -> None:
    ensure_created(engine, METADATA)


def row_of(command: Any, outcome: Any) -> tuple[Any, ...] | None:
    """The log row of one command's ``Outcome``: for a command a door received (its actor has
    ``received_at``: someone may be waiting for the answer) with an id; else None. A producer
    writing to Kafka directly learns its outcomes from ticket-events and the dead letters."""
    received = command.actor.received_at
    if not command.command_id or not received:
        return None
    error = outcome.error
    return (command.command_id, command.actor.id, command.type,
            str(outcome.ticket_id) if outcome.ticket_id else None,
            "refused" if error is not None else "applied",
            None if error is not None else outcome.events[0], outcome.version,
            error.code if error is not None else None, str(error) if error is not None else None,
            command.occurred_at.isoformat(), received)


def lookup(engine: Engine, command_id: str) -> dict[str, Any] | None:
    ensure_table(engine)
    with engine.connect() as conn:
        row = conn.execute(select(command_outcomes).where(command_outcomes.c.command_id == command_id)).first()
    return dict(row._mapping) if row is not None else None
