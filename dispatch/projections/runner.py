"""Embedded mode: poll the event store's notification log into the projections.

eventsourcing's ProjectionRunner subscribes only on PostgreSQL; polling works on both
backends and uses the same ``apply_records`` as the Kafka consumer and a rebuild.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from dispatch.projections.tables import stored_position

__all__ = ["STORE_SOURCE", "catch_up", "for_reading", "store_top"]

STORE_SOURCE = "store"


def catch_up(runtime: Any, *, until: datetime | None = None, batch_size: int = 2000) -> int:
    """Apply the notifications recorded since the stored position; return #events applied.

    ``until`` applies only events whose business time is at or before it (time travel).
    The position still moves past the events left out, so a database caught up with
    ``until`` is a snapshot for that instant: rebuild into a fresh database for it.
    """
    engine = runtime.engine
    stored = stored_position(engine, STORE_SOURCE)
    top = store_top(engine, getattr(runtime, "store_table", None))
    if top is not None and top <= (stored or 0):
        return 0  # nothing new: a read command need not load the projection code, nor the store's
    from dispatch.projections.apply import PositionMoved, apply_records
    from dispatch.projections.reader import StoreReader

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


def for_reading(runtime: Any) -> None:
    """Before a read of the read models: bring them up to date — unless a projector of this
    process keeps them so (``runtime.reads_catch_up`` False: an embedded web process, whose
    writes are answered once projected and whose live pages' watcher projects what other
    processes wrote; its reads then never project, nor wait for one another's projection)."""
    if getattr(runtime, "reads_catch_up", True):
        catch_up(runtime)


def store_top(engine: Engine, table: str | None) -> int | None:
    """The event store's last notification id, read on the read models' engine when the store
    is a ``table`` of the same database (``Runtime.store_table``; None: unknown, so ask the store)."""
    if table is None:
        return None
    column = "rowid" if engine.dialect.name == "sqlite" else "notification_id"
    try:
        with engine.connect() as conn:
            return conn.execute(text(f"SELECT max({column}) FROM {table}")).scalar() or 0
    except (OperationalError, ProgrammingError) as error:
        if table in str(error):  # no store in this database (a replay's): no event to apply
            return 0
        raise
