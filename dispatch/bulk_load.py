"""Load many tickets in one query.

A Kafka batch touches hundreds of tickets; loading them one ``repository.get`` at a
time costs a database round trip each. This reads the stored events of all of them
with one ``IN`` / ``= ANY`` query against eventsourcing's own recorder tables (SQLite
or PostgreSQL) and replays each ticket from its events, exactly as the repository
does (snapshots are an optimisation the short ticket histories here don't need).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder
from eventsourcing.sqlite import SQLiteAggregateRecorder
from psycopg.sql import SQL, Identifier

from dispatch.aggregates import Ticket

__all__ = ["load_tickets"]

_SQLITE_CHUNK = 500  # stay well under SQLite's bound-parameter limit


def _stored_events(recorder: Any, ids: list[UUID]) -> dict[UUID, list[StoredEvent]]:
    found: dict[UUID, list[StoredEvent]] = defaultdict(list)
    if isinstance(recorder, PostgresAggregateRecorder):
        statement = SQL("SELECT * FROM {schema}.{table} WHERE originator_id = ANY(%s) "
                        "ORDER BY originator_id, originator_version").format(
            schema=Identifier(recorder.datastore.schema), table=Identifier(recorder.events_table_name))
        with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, [ids])
            for row in curs.fetchall():
                found[row["originator_id"]].append(StoredEvent(
                    originator_id=row["originator_id"], originator_version=row["originator_version"],
                    topic=row["topic"], state=bytes(row["state"])))
    elif isinstance(recorder, SQLiteAggregateRecorder):
        with recorder.datastore.transaction(commit=False) as c:
            for i in range(0, len(ids), _SQLITE_CHUNK):
                chunk = [t.hex for t in ids[i:i + _SQLITE_CHUNK]]
                c.execute(f"SELECT * FROM {recorder.events_table_name} WHERE originator_id IN "
                          f"({','.join('?' * len(chunk))}) ORDER BY originator_id, originator_version", chunk)
                for row in c.fetchall():
                    tid = UUID(row["originator_id"])
                    found[tid].append(StoredEvent(originator_id=tid, originator_version=row["originator_version"],
                                                  topic=row["topic"], state=row["state"]))
    else:  # another persistence module: one query per ticket
        for tid in ids:
            events = list(recorder.select_events(tid))
            if events:
                found[tid] = events
    return found


def load_tickets(recorder: Any, mapper: Mapper[Any], ids: Collection[UUID]) -> dict[UUID, Ticket]:
    """The current state of every ticket in ``ids`` that exists (absent ids are left out)."""
    tickets: dict[UUID, Ticket] = {}
    if not ids:
        return tickets
    for tid, stored in _stored_events(recorder, list(ids)).items():
        aggregate: Any = None
        for s in stored:
            aggregate = mapper.to_domain_event(s).mutate(aggregate)  # type: ignore[attr-defined]
        tickets[tid] = aggregate
    return tickets
