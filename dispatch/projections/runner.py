"""Embedded mode: poll the event store's notification log into the projections.

eventsourcing's ProjectionRunner subscribes only on PostgreSQL; polling works on both
backends and uses the same ``apply_records`` as the Kafka consumer and a rebuild.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dispatch.projections.apply import PositionMoved, apply_records, stored_position
from dispatch.projections.reader import StoreReader

__all__ = ["STORE_SOURCE", "catch_up"]

STORE_SOURCE = "store"


def catch_up(runtime: Any, *, until: datetime | None = None, batch_size: int = 2000) -> int:
    """Apply the notifications recorded since the stored position; return #events applied.

    ``until`` applies only events whose business time is at or before it (time travel).
    The position still moves past the events left out, so a database caught up with
    ``until`` is a snapshot for that instant: rebuild into a fresh database for it.
    """
    engine = runtime.engine
    stored = stored_position(engine, STORE_SOURCE)
    applied = 0
    reader = StoreReader(runtime.app)
    while True:
        records, last, read = reader.page((stored or 0) + 1, batch_size)
        if not read:
            break
        if until is not None:
            records = [r for r in records if r.occurred_at <= until]
        try:
            applied += apply_records(engine, records, source=STORE_SOURCE, position=last, expected=stored)
        except PositionMoved:  # another process or thread applied these first: go on from where it is
            moved = stored_position(engine, STORE_SOURCE)
            if moved == stored:
                raise
            stored = moved
            continue
        stored = last
        if read < batch_size:
            break
    return applied
