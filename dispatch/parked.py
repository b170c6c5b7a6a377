"""Parked answers: department answers that reached the Kafka engine before the dispatch they
answer (``dispatch.parking`` decides when one is parked, woken, or given up).

A parked answer is a row holding the message as it came (topic, partition, offset, timestamp,
key and the bytes), so that when it is finally applied or refused it is exactly that message,
and a dead letter carries its own bytes. Rows are written and deleted in the transaction that
stores the batch's events and its partition positions (``eventstore.WithOutcomes``): a parked
answer is never both parked and past, never lost between the two.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Column, Engine, Integer, LargeBinary, MetaData, String, Table, func, select

from dispatch.store import ensure_created

__all__ = ["PARKED_COLUMNS", "ParkedAnswer", "ensure_table", "load", "parked_answers", "waiting"]

METADATA = MetaData()
parked_answers = Table(
    "parked_answers", METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),  # the order they were parked in
    Column("ticket_id", String(60), nullable=False, index=True),
    Column("dispatch_no", Integer, nullable=False),  # the dispatch the answer waits for
    Column("source", String(330), nullable=False, unique=True),  # topic:partition:offset
    Column("src_topic", String(300), nullable=False),
    Column("src_partition", Integer, nullable=False),
    Column("src_offset", BigInteger, nullable=False),
    Column("src_timestamp", BigInteger),
    Column("msg_key", LargeBinary),
    Column("msg_value", LargeBinary),
    Column("occurred_at", String(40), nullable=False),  # the answer's business time, as on the wire
)
PARKED_COLUMNS = tuple(c.name for c in parked_answers.columns if c.name != "id")


@dataclass(frozen=True)
class ParkedAnswer:
    """A parked row, shaped like the consumer record it came from (``DeadLetter.of`` reads it)."""

    id: int | None
    ticket_id: str
    dispatch_no: int
    topic: str
    partition: int
    offset: int
    timestamp: int | None
    key: bytes | None
    value: bytes | None
    occurred_at: str
    headers: tuple[tuple[str, bytes], ...] = ()

    def row(self) -> tuple[Any, ...]:
        """Its values in ``PARKED_COLUMNS`` order."""
        return (self.ticket_id, self.dispatch_no, f"{self.topic}:{self.partition}:{self.offset}", self.topic,
                self.partition, self.offset, self.timestamp, self.key, self.value, self.occurred_at)


def ensure_table(engine: Engine) -> None:
    ensure_created(engine, METADATA)


def waiting(engine: Engine) -> dict[str, tuple[int, int]]:
    """Every ticket with parked answers: how many, and the lowest dispatch they wait for. One
    grouped read (the table is small and bounded)."""
    with engine.connect() as conn:
        rows = conn.execute(select(parked_answers.c.ticket_id, func.count(), func.min(parked_answers.c.dispatch_no))
                            .group_by(parked_answers.c.ticket_id)).all()
    return {ticket: (n, lowest) for ticket, n, lowest in rows}


def load(engine: Engine, tickets: Iterable[str] | None = None) -> list[ParkedAnswer]:
    """The parked answers of ``tickets`` (all, if None), oldest first."""
    query = select(parked_answers).order_by(parked_answers.c.id)
    if tickets is not None:
        query = query.where(parked_answers.c.ticket_id.in_(sorted(set(tickets))))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [ParkedAnswer(r.id, r.ticket_id, r.dispatch_no, r.src_topic, r.src_partition, r.src_offset,
                         r.src_timestamp, None if r.msg_key is None else bytes(r.msg_key),
                         None if r.msg_value is None else bytes(r.msg_value), r.occurred_at) for r in rows]


def describe(engine: Engine) -> list[dict[str, Any]]:
    """Every parked answer, for operators (``dispatch parked``)."""
    return [{"ticket_id": p.ticket_id, "dispatch_no": p.dispatch_no, "source": f"{p.topic}:{p.partition}:{p.offset}",
             "occurred_at": p.occurred_at} for p in load(engine)]
