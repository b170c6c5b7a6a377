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
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteAggregateRecorder
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from dispatch.aggregates import Ticket

__all__ = ["TicketCache", "install_fast_insert", "load_tickets"]

_SQLITE_CHUNK = 500  # stay well under SQLite's bound-parameter limit


def _stored_events(recorder: Any, ids: list[UUID]) -> dict[UUID, list[StoredEvent]]:
    found: dict[UUID, list[StoredEvent]] = defaultdict(list)
    if isinstance(recorder, PostgresAggregateRecorder):
        statement = SQL("SELECT originator_id, originator_version, topic, state FROM {schema}.{table} "
                        "WHERE originator_id = ANY(%b) "
                        "ORDER BY originator_id, originator_version").format(
            schema=Identifier(recorder.datastore.schema), table=Identifier(recorder.events_table_name))
        with recorder.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(statement, [ids])
            for oid, version, topic, state in curs.fetchall():
                found[oid].append(StoredEvent(originator_id=oid, originator_version=version, topic=topic,
                                              state=bytes(state)))
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


def _stored_versions(recorder: Any, ids: list[UUID]) -> dict[UUID, int] | None:
    """The latest stored version of each ticket in ``ids`` (index-only), or None if the
    recorder is not PostgreSQL (then the cache is not used)."""
    if not isinstance(recorder, PostgresAggregateRecorder):
        return None
    statement = SQL("SELECT originator_id, MAX(originator_version) AS v FROM {schema}.{table} "
                    "WHERE originator_id = ANY(%b) GROUP BY originator_id").format(
        schema=Identifier(recorder.datastore.schema), table=Identifier(recorder.events_table_name))
    with recorder.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
        curs.execute(statement, [ids])
        return dict(curs.fetchall())


class TicketCache:
    """Tickets as this process last recorded them. A cached ticket is used only if the
    store's latest version of it is still the cached one (checked per batch in one
    index-only query), so a write by any other process is always seen; tickets whose
    batch was not recorded are dropped (``discard``)."""

    def __init__(self, limit: int = 50_000):
        self.limit = limit
        self.tickets: dict[UUID, Ticket] = {}

    def load(self, recorder: Any, mapper: Mapper[Any], ids: Collection[UUID]) -> dict[UUID, Ticket]:
        if not ids:
            return {}
        cached = [tid for tid in ids if tid in self.tickets]
        versions = _stored_versions(recorder, cached) if cached else {}
        if versions is None:
            return load_tickets(recorder, mapper, ids)
        found: dict[UUID, Ticket] = {}
        for tid in cached:
            ticket = self.tickets[tid]
            if versions.get(tid) == ticket.version:
                found[tid] = ticket
            else:
                del self.tickets[tid]
        missing = [tid for tid in ids if tid not in found]
        if missing:
            found.update(load_tickets(recorder, mapper, missing))
        return found

    def keep(self, tickets: Collection[Ticket]) -> None:
        if len(self.tickets) + len(tickets) > self.limit:
            self.tickets.clear()
        for ticket in tickets:
            self.tickets[ticket.id] = ticket

    def discard(self, ids: Collection[UUID]) -> None:
        for tid in ids:
            self.tickets.pop(tid, None)

    def clear(self) -> None:
        self.tickets.clear()


def install_fast_insert(recorder: Any) -> None:
    """Insert a transaction's events with one ``unnest`` of four plain arrays instead of
    eventsourcing's array of a composite type (whose client-side dumping costs ~20 µs an
    event). Same statement otherwise: table lock, NOTIFY, ``RETURNING notification_id``."""
    if not isinstance(recorder, PostgresApplicationRecorder) or getattr(recorder, "_dispatch_fast", False):
        return
    id_type = "uuid" if recorder.datastore.originator_id_type == "uuid" else "text"
    statement = SQL("INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state) "
                    "SELECT * FROM unnest(%b::{id_type}[], %b::bigint[], %b::text[], %b::bytea[]) "
                    "RETURNING notification_id").format(
        schema=Identifier(recorder.datastore.schema), table=Identifier(recorder.events_table_name),
        id_type=SQL(id_type))

    def insert_stored_events(curs: Any, stored_events: Any, **_: Any) -> None:
        recorder._lock_table(curs)
        recorder._notify_channel(curs)
        curs.execute(statement, [[e.originator_id for e in stored_events],
                                 [e.originator_version for e in stored_events],
                                 [e.topic for e in stored_events], [e.state for e in stored_events]], prepare=True)

    setattr(recorder, "_insert_stored_events", insert_stored_events)  # noqa: B010 - patch one instance
    setattr(recorder, "_dispatch_fast", True)  # noqa: B010
