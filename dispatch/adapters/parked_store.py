"""Parked commands: department answers that reached the Kafka engine before the dispatch they
answer, and any command that reached it before the report of its ticket (``dispatch.service.parking``
decides when one is parked, woken, or given up).

A parked command is a row holding the message as it came (topic, partition, offset, timestamp,
key, headers and the bytes), so that when it is finally applied or refused it is exactly that
message, and a dead letter carries its own bytes and headers. ``dispatch_no`` is the dispatch
it waits for, 0 for the report, -1 for its turn (it came before the report and the lifecycle
refused it not yet); ``parked_at`` when it was parked (the engine's clock), from
which a command waiting for its report is given up after the parking window. Rows are written and deleted in the transaction that
stores the batch's events and its partition positions (``eventstore.WithOutcomes``): a parked
answer is never both parked and past, never lost between the two.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (BigInteger, Column, Engine, Integer, LargeBinary, MetaData, String, Table, case, func,
                        inspect, select)

from dispatch.adapters.database import ensure_created

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
    Column("msg_headers", LargeBinary),  # the message's headers, JSON: [[key, base64 value], …]
    Column("parked_at", String(40)),  # ISO-8601, by the engine's clock
)
_ADDED = {"msg_headers": "BLOB", "parked_at": "VARCHAR(40)"}  # columns newer than the table's first version
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
    parked_at: str | None = None

    def row(self) -> tuple[Any, ...]:
        """Its values in ``PARKED_COLUMNS`` order."""
        return (self.ticket_id, self.dispatch_no, f"{self.topic}:{self.partition}:{self.offset}", self.topic,
                self.partition, self.offset, self.timestamp, self.key, self.value, self.occurred_at,
                _headers_out(self.headers), self.parked_at)


def _headers_out(headers: Any) -> bytes | None:
    if not headers:
        return None
    return json.dumps([[k, base64.b64encode(v if isinstance(v, bytes) else str(v).encode()).decode()]
                       for k, v in headers]).encode()


def _headers_in(raw: Any) -> tuple[tuple[str, bytes], ...]:
    if not raw:
        return ()
    return tuple((k, base64.b64decode(v)) for k, v in json.loads(bytes(raw)))


def ensure_table(engine: Engine) -> None:
    """The table, with the columns later versions added (a table made before them gains them)."""
    ensure_created(engine, METADATA)
    if id(engine) in _CHECKED:
        return
    have = {c["name"] for c in inspect(engine).get_columns(parked_answers.name)}
    missing = [(name, kind) for name, kind in _ADDED.items() if name not in have]
    if missing:
        blob = "BYTEA" if engine.dialect.name == "postgresql" else "BLOB"
        with engine.begin() as conn:
            for name, kind in missing:
                conn.exec_driver_sql(f"ALTER TABLE {parked_answers.name} ADD COLUMN {name} "
                                     f"{blob if kind == 'BLOB' else kind}")
    _CHECKED.add(id(engine))


_CHECKED: set[int] = set()


def waiting(engine: Engine) -> dict[str, tuple[int, int | None, bool]]:
    """Every ticket with parked commands: how many, the lowest dispatch (or 0, the report) they
    wait for (None: none waits for either), and whether some wait for their turn (-1). One
    grouped read (the table is small and bounded)."""
    c = parked_answers.c
    with engine.connect() as conn:
        rows = conn.execute(select(c.ticket_id, func.count(),
                                   func.min(case((c.dispatch_no >= 0, c.dispatch_no), else_=None)),
                                   func.min(c.dispatch_no)).group_by(c.ticket_id)).all()
    return {ticket: (n, lowest, least < 0) for ticket, n, lowest, least in rows}


def load(engine: Engine, tickets: Iterable[str] | None = None) -> list[ParkedAnswer]:
    """The parked answers of ``tickets`` (all, if None), oldest first."""
    query = select(parked_answers).order_by(parked_answers.c.id)
    if tickets is not None:
        query = query.where(parked_answers.c.ticket_id.in_(sorted(set(tickets))))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [ParkedAnswer(r.id, r.ticket_id, r.dispatch_no, r.src_topic, r.src_partition, r.src_offset,
                         r.src_timestamp, None if r.msg_key is None else bytes(r.msg_key),
                         None if r.msg_value is None else bytes(r.msg_value), r.occurred_at,
                         _headers_in(r.msg_headers), r.parked_at) for r in rows]


def describe(engine: Engine) -> list[dict[str, Any]]:
    """Every parked command, for operators (``dispatch parked``): what it waits for."""
    return [{"ticket_id": p.ticket_id, "dispatch_no": p.dispatch_no,
             "waits_for": "its report" if p.dispatch_no == 0 else f"dispatch {p.dispatch_no}",
             "source": f"{p.topic}:{p.partition}:{p.offset}", "occurred_at": p.occurred_at,
             "parked_at": p.parked_at} for p in load(engine)]
