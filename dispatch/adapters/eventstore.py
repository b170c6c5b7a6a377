"""The event store: the one module coupled to eventsourcing's persistence.

Everything dispatch does with eventsourcing's recorders beyond their public methods is here,
and only here (a unit test holds this: no other module names a private recorder method, the
``datastore`` or the recorder tables):

- ``PostgresStore`` / ``SQLiteStore``: eventsourcing's process recorders with two changes,
  registered with the application's factory by name (``PROCESS_RECORDER_TOPIC``, see
  ``recorder_topic``), never patched onto an instance:
  - **fenced tracking**: a ``FencedTracking(name, last, expected)`` position is written only if
    the stored one is ``expected`` (``None``: nothing stored yet), in the same transaction as the
    events; ``FencedTrackings`` writes several in one. eventsourcing's own insert only refuses a
    position that is not greater, which does not stop two consumers that started a partition
    from the same position and stopped at different offsets (an evicted one and its successor);
  - **fast insert** (PostgreSQL): a transaction's events go in with one ``unnest`` of four plain
    arrays instead of an array of a composite type (whose client-side dumping costs ~20 µs an
    event); the same table lock, NOTIFY and ``RETURNING notification_id``.
- ``record(app, processing)``: an application's events and tracking in one transaction, then
  its snapshots (``Application._record`` and ``_take_snapshots``).
- ``stored_events`` / ``stored_versions`` / ``latest_snapshots``: many tickets' events (all, or
  after their snapshots), latest versions or latest snapshots, each in one query.
- ``notification_rows``: a page of the notification log as plain driver tuples.
- ``store_spec``: how another process opens the same store by itself (rebuild workers).
- ``listen``: a PostgreSQL connection LISTENing on the channel the store NOTIFYs on commit.
- ``TicketStore``: the tickets as eventsourcing stores them (the snapshot setting, these
  recorders, ``get_ticket``) — what a read of one ticket needs; ``DispatchApp`` adds the commands.
"""

from __future__ import annotations

import contextlib
import sys
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, StoredEvent, Tracking
from eventsourcing.sqlite import SQLiteAggregateRecorder, SQLiteProcessRecorder

from dispatch.adapters.outcome_log import COLUMNS, OUTCOME_TYPES
from dispatch.adapters.parked_store import PARKED_COLUMNS
from dispatch.aggregates import Ticket
from dispatch.domain.errors import DispatchError, TicketNotFound

__all__ = ["FencedTracking", "FencedTrackings", "WithOutcomes", "PostgresStore", "SQLiteStore", "StoreSpec", "install_fence",
           "latest_snapshots", "listen", "notification_rows", "snapshots_and_events", "record", "recorder_topic", "store_spec", "stored_events",
           "stored_versions", "with_numbers"]

_SQLITE_CHUNK = 500  # ids per IN (…): well under SQLite's bound-parameter limit


@dataclass(frozen=True)
class FencedTracking(Tracking):
    expected: int | None = None  # the stored position this batch continues from


@dataclass(frozen=True)
class FencedTrackings(Tracking):
    """Several partitions' positions in ONE transaction (eventsourcing's ``ProcessingEvent``
    carries one ``Tracking``): every part is written with its own compare-and-set, and if
    any part fails, the whole transaction (events and every position) rolls back."""

    parts: tuple[FencedTracking, ...] = ()

    @classmethod
    def of(cls, parts: list[FencedTracking]) -> FencedTrackings:
        if not parts:
            raise ValueError("no positions to record")
        return cls(parts[0].application_name, parts[0].notification_id, tuple(parts))


@dataclass(frozen=True)
class WithOutcomes(Tracking):
    """A position (``inner``, or None) and what else the batch it closes writes, in the
    transaction of the batch's events: its command log rows (``dispatch.adapters.outcome_log``), the
    answers it parks and the parked answers it applied or gave up (``dispatch.adapters.parked_store``: a
    row already gone fails the transaction — another engine took that answer meanwhile), and
    the case numbers of the tickets it reported (``dispatch.adapters.case_register``' index: number, ticket id)."""

    inner: Tracking | None = None
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    parked: list[tuple[Any, ...]] = field(default_factory=list)
    unparked: list[int] = field(default_factory=list)
    numbered: list[tuple[str, str]] = field(default_factory=list)


def with_numbers(tracking: Tracking | None, numbered: list[tuple[str, str]]) -> WithOutcomes:
    """``tracking`` (or no position) with these case numbers to index in the same transaction."""
    if isinstance(tracking, WithOutcomes):
        return replace(tracking, numbered=[*tracking.numbered, *numbered])
    if tracking is None:
        return WithOutcomes("case-numbers", 0, numbered=numbered)
    return WithOutcomes(tracking.application_name, tracking.notification_id, inner=tracking, numbered=numbered)


class _Fenced:
    """The compare-and-set tracking write, shared by both stores (``_fence_sql`` differs)."""

    _fence_insert: str
    _fence_update: str

    _outcome_insert: str
    _park_insert: str
    _unpark: str  # one placeholder: SQLite repeats it per id
    _number_insert: str

    def _insert_outcomes(self, curs: Any, rows: list[tuple[Any, ...]]) -> None:
        curs.executemany(self._outcome_insert, rows)

    def _unpark_ids(self, curs: Any, ids: list[int]) -> int:
        gone = 0
        for i in range(0, len(ids), _SQLITE_CHUNK):
            chunk = ids[i:i + _SQLITE_CHUNK]
            curs.execute(self._unpark.replace("?", ",".join("?" * len(chunk))), chunk)
            gone += getattr(curs, "sqlite_cursor", curs).rowcount  # eventsourcing's wrapper has no rowcount
        return gone

    def _insert_tracking(self, curs: Any, tracking: Tracking) -> None:
        if isinstance(tracking, WithOutcomes):
            if tracking.inner is not None:
                self._insert_tracking(curs, tracking.inner)
            if tracking.rows:
                self._insert_outcomes(curs, tracking.rows)
            if tracking.unparked and self._unpark_ids(curs, tracking.unparked) != len(set(tracking.unparked)):
                raise IntegrityError("a parked answer was taken by another engine meanwhile")
            if tracking.parked:
                curs.executemany(self._park_insert, tracking.parked)
            if tracking.numbered:
                curs.executemany(self._number_insert, tracking.numbered)
            return
        if isinstance(tracking, FencedTrackings):
            for part in tracking.parts:
                self._insert_tracking(curs, part)
            return
        if not isinstance(tracking, FencedTracking):
            super()._insert_tracking(curs, tracking)  # type: ignore[misc]
            return
        params = {"name": tracking.application_name, "new": tracking.notification_id, "expected": tracking.expected}
        curs.execute(self._fence_insert if tracking.expected is None else self._fence_update, params)
        if curs.fetchone() is None:
            raise IntegrityError(
                f"{tracking.application_name}: stored position is not {tracking.expected}; "
                "another consumer recorded this partition meanwhile"
            )


class SQLiteStore(_Fenced, SQLiteProcessRecorder):
    _outcome_insert = (f"INSERT INTO command_outcomes ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))}) "
                       "ON CONFLICT (command_id) DO NOTHING")
    _park_insert = (f"INSERT INTO parked_answers ({', '.join(PARKED_COLUMNS)}) "
                    f"VALUES ({', '.join('?' * len(PARKED_COLUMNS))}) ON CONFLICT (source) DO NOTHING")
    _unpark = "DELETE FROM parked_answers WHERE id IN (?)"
    _number_insert = "INSERT INTO case_tickets (case_no, ticket_id) VALUES (?, ?)"
    _fence_insert = "INSERT INTO tracking VALUES (:name, :new) ON CONFLICT DO NOTHING RETURNING notification_id"
    _fence_update = ("UPDATE tracking SET notification_id = :new "
                     "WHERE application_name = :name AND notification_id = :expected RETURNING notification_id")


@cache
def _postgres_store() -> type:
    """``PostgresStore``, defined when first asked for: psycopg and eventsourcing's PostgreSQL
    module are imported only by processes that use PostgreSQL (a CLI command on SQLite starts
    faster without them)."""
    from eventsourcing.postgres import PostgresProcessRecorder

    class PostgresStore(_Fenced, PostgresProcessRecorder):
        # a batch's outcomes in one statement: one array per column (as the events' fast insert)
        _outcome_insert = (f"INSERT INTO command_outcomes ({', '.join(COLUMNS)}) SELECT * FROM unnest("
                           + ", ".join(f"%s::{kind}[]" for kind in OUTCOME_TYPES) + ") ON CONFLICT (command_id) DO NOTHING")

        _park_insert = (f"INSERT INTO parked_answers ({', '.join(PARKED_COLUMNS)}) "
                        f"VALUES ({', '.join(['%s'] * len(PARKED_COLUMNS))}) ON CONFLICT (source) DO NOTHING")
        _number_insert = "INSERT INTO case_tickets (case_no, ticket_id) VALUES (%s, %s)"

        def _insert_outcomes(self, curs: Any, rows: list[tuple[Any, ...]]) -> None:
            curs.execute(self._outcome_insert, [list(column) for column in zip(*rows)], prepare=True)

        def _unpark_ids(self, curs: Any, ids: list[int]) -> int:
            # RETURNING, not rowcount: the transaction may run in pipeline mode, where a count waits
            curs.execute("DELETE FROM parked_answers WHERE id = ANY(%s) RETURNING id", [ids])
            return len(curs.fetchall())

        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, **kwargs)
            from psycopg.sql import SQL, Identifier

            schema = self.datastore.schema
            tracking = f'"{schema}"."{self.tracking_table_name}"'
            self._fence_insert = (f"INSERT INTO {tracking} VALUES (%(name)s, %(new)s) ON CONFLICT DO NOTHING "
                                  "RETURNING notification_id")
            self._fence_update = (f"UPDATE {tracking} SET notification_id = %(new)s WHERE application_name = %(name)s "
                                  "AND notification_id = %(expected)s RETURNING notification_id")
            id_type = _id_type(self)
            self._fast_insert = SQL("INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state) "
                                    "SELECT * FROM unnest(%b::{id_type}[], %b::bigint[], %b::text[], %b::bytea[]) "
                                    "RETURNING notification_id").format(
                schema=Identifier(schema), table=Identifier(self.events_table_name), id_type=SQL(id_type))

        def _insert_stored_events(self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
            self._lock_table(curs)
            self._notify_channel(curs)
            curs.execute(self._fast_insert, [[e.originator_id for e in stored_events],
                                             [e.originator_version for e in stored_events],
                                             [e.topic for e in stored_events], [e.state for e in stored_events]],
                         prepare=True)

    return PostgresStore


def __getattr__(name: str) -> Any:  # ``dispatch.adapters.eventstore:PostgresStore``, the recorder topic
    if name == "PostgresStore":
        return _postgres_store()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def recorder_topic(persistence_module: str) -> str | None:
    """The ``PROCESS_RECORDER_TOPIC`` for eventsourcing's ``PERSISTENCE_MODULE``."""
    return {"eventsourcing.postgres": f"{__name__}:PostgresStore",
            "eventsourcing.sqlite": f"{__name__}:SQLiteStore"}.get(persistence_module)


def install_fence(recorder: Any) -> None:
    """Check that ``recorder`` writes ``FencedTracking`` (the stores here all do)."""
    if not isinstance(recorder, _Fenced):
        raise TypeError(f"{type(recorder).__name__} does not write fenced positions; use dispatch's event store")


def record(app: Any, processing: Any) -> None:
    """Record a ``ProcessingEvent`` (events and tracking, one transaction), then take the
    snapshots it calls for."""
    app._record(processing)
    app._take_snapshots(processing)


# -- reads straight from the driver -------------------------------------------------------------------

def _kind(recorder: Any) -> str:
    if isinstance(recorder, SQLiteAggregateRecorder):
        return "sqlite"
    if "eventsourcing.postgres" in sys.modules:
        from eventsourcing.postgres import PostgresAggregateRecorder

        if isinstance(recorder, PostgresAggregateRecorder):
            return "postgres"
    return ""


def _id_type(recorder: Any) -> str:
    return "uuid" if recorder.datastore.originator_id_type == "uuid" else "text"


def stored_events(recorder: Any, ids: list[UUID], after: dict[UUID, int] | None = None
                  ) -> dict[UUID, list[StoredEvent]]:
    """The stored events of every ticket in ``ids`` (in version order), in one query; with
    ``after``, only a ticket's events after the version given for it (a snapshot's)."""
    found: dict[UUID, list[StoredEvent]] = defaultdict(list)
    after = after or {}
    kind = _kind(recorder)
    if kind == "postgres":
        from psycopg.rows import tuple_row
        from psycopg.sql import SQL, Identifier

        table = {"schema": Identifier(recorder.datastore.schema), "table": Identifier(recorder.events_table_name)}
        if after:  # an index range per ticket, from its snapshot on
            statement = SQL("SELECT e.originator_id, e.originator_version, e.topic, e.state "
                            "FROM unnest(%b::{id_type}[], %b::bigint[]) AS w(id, v) CROSS JOIN LATERAL "
                            "(SELECT * FROM {schema}.{table} x WHERE x.originator_id = w.id "
                            "AND x.originator_version > w.v) e "
                            "ORDER BY e.originator_id, e.originator_version").format(
                id_type=SQL(_id_type(recorder)), **table)
            params: list[Any] = [ids, [after.get(i, 0) for i in ids]]
        else:
            statement = SQL("SELECT originator_id, originator_version, topic, state FROM {schema}.{table} "
                            "WHERE originator_id = ANY(%b) ORDER BY originator_id, originator_version").format(**table)
            params = [ids]
        with recorder.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(statement, params)
            for oid, version, topic, state in curs.fetchall():
                found[oid].append(StoredEvent(originator_id=oid, originator_version=version, topic=topic,
                                              state=bytes(state)))
    elif kind == "sqlite":
        with recorder.datastore.transaction(commit=False) as c:
            for i in range(0, len(ids), _SQLITE_CHUNK):
                chunk = ids[i:i + _SQLITE_CHUNK]
                if any(t in after for t in chunk):
                    where = " OR ".join("(originator_id = ? AND originator_version > ?)" for _ in chunk)
                    params = [p for t in chunk for p in (t.hex, after.get(t, 0))]
                else:
                    where = f"originator_id IN ({','.join('?' * len(chunk))})"
                    params = [t.hex for t in chunk]
                c.execute(f"SELECT * FROM {recorder.events_table_name} WHERE {where} "
                          "ORDER BY originator_id, originator_version", params)
                for row in c.fetchall():
                    tid = UUID(row["originator_id"])
                    found[tid].append(StoredEvent(originator_id=tid, originator_version=row["originator_version"],
                                                  topic=row["topic"], state=row["state"]))
    else:  # another persistence module: one query per ticket
        for tid in ids:
            events = list(recorder.select_events(tid, gt=after.get(tid)))
            if events:
                found[tid] = events
    return found


def latest_snapshots(recorder: Any, ids: list[UUID]) -> dict[UUID, StoredEvent]:
    """The latest snapshot of every ticket in ``ids`` that has one, in one query
    (``recorder``: the application's snapshot store's)."""
    found: dict[UUID, StoredEvent] = {}
    kind = _kind(recorder)
    if kind == "postgres":
        from psycopg.rows import tuple_row
        from psycopg.sql import SQL, Identifier

        statement = SQL("SELECT DISTINCT ON (originator_id) originator_id, originator_version, topic, state "
                        "FROM {schema}.{table} WHERE originator_id = ANY(%b) "
                        "ORDER BY originator_id, originator_version DESC").format(
            schema=Identifier(recorder.datastore.schema), table=Identifier(recorder.events_table_name))
        with recorder.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(statement, [ids])
            for oid, version, topic, state in curs.fetchall():
                found[oid] = StoredEvent(originator_id=oid, originator_version=version, topic=topic,
                                         state=bytes(state))
    elif kind == "sqlite":
        with recorder.datastore.transaction(commit=False) as c:
            for i in range(0, len(ids), _SQLITE_CHUNK):
                chunk = [t.hex for t in ids[i:i + _SQLITE_CHUNK]]
                # SQLite takes the other columns from the row that has the MAX
                c.execute(f"SELECT originator_id, MAX(originator_version) AS originator_version, topic, state "
                          f"FROM {recorder.events_table_name} WHERE originator_id IN "
                          f"({','.join('?' * len(chunk))}) GROUP BY originator_id", chunk)
                for row in c.fetchall():
                    tid = UUID(row["originator_id"])
                    found[tid] = StoredEvent(originator_id=tid, originator_version=row["originator_version"],
                                             topic=row["topic"], state=row["state"])
    else:
        for tid in ids:
            latest = list(recorder.select_events(tid, desc=True, limit=1))
            if latest:
                found[tid] = latest[0]
    return found


def snapshots_and_events(recorder: Any, snapshots: Any, ids: list[UUID]
                         ) -> tuple[dict[UUID, StoredEvent], dict[UUID, list[StoredEvent]]]:
    """Each ticket's latest snapshot (if any) and its events after it. Two queries: a single
    statement for both (a CTE with a LATERAL range per ticket) measured slower for the Kafka
    engine's large batches than the plain ``= ANY`` read that tickets without a snapshot get."""
    newest = latest_snapshots(snapshots, ids)
    return newest, stored_events(recorder, ids, {tid: s.originator_version for tid, s in newest.items()})


def stored_versions(recorder: Any, ids: list[UUID]) -> dict[UUID, int] | None:
    """The latest stored version of each ticket in ``ids`` (index-only), or None where the
    store cannot answer it in one cheap query (anything but PostgreSQL)."""
    if _kind(recorder) != "postgres":
        return None
    from psycopg.rows import tuple_row
    from psycopg.sql import SQL, Identifier

    statement = SQL("SELECT originator_id, MAX(originator_version) AS v FROM {schema}.{table} "
                    "WHERE originator_id = ANY(%b) GROUP BY originator_id").format(
        schema=Identifier(recorder.datastore.schema), table=Identifier(recorder.events_table_name))
    with recorder.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
        curs.execute(statement, [ids])
        return dict(curs.fetchall())


def notification_rows(recorder: Any, start: int, limit: int, stop: int | None) -> list[Any] | None:
    """``(id, originator_id text, version, topic, state)`` tuples: what
    ``select_notifications(start, limit, stop)`` selects, without building a ``Notification``
    per row; None for a store this cannot read (then use ``select_notifications``)."""
    kind = _kind(recorder)
    params = (start, stop, limit) if stop is not None else (start, limit)
    if kind == "sqlite":
        sql = (f"SELECT rowid, originator_id, originator_version, topic, state FROM {recorder.events_table_name} "
               f"WHERE rowid>=? {'AND rowid<=? ' if stop is not None else ''}ORDER BY rowid LIMIT ?")
        with recorder.datastore.transaction(commit=False) as c:
            cursor = c.sqlite_cursor
            cursor.row_factory = None  # plain tuples (the connection's factory is sqlite3.Row)
            cursor.execute(sql, params)
            return cursor.fetchall()
    if kind == "postgres":
        from psycopg import sql as q
        from psycopg.rows import tuple_row

        query = q.SQL("SELECT notification_id, originator_id::text, originator_version, topic, state "
                      "FROM {schema}.{table} WHERE notification_id>=%s {stop}ORDER BY notification_id LIMIT %s").format(
            schema=q.Identifier(recorder.datastore.schema), table=q.Identifier(recorder.events_table_name),
            stop=q.SQL("AND notification_id<=%s " if stop is not None else ""))
        with recorder.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cursor:
            cursor.execute(query, params, prepare=True)
            return cursor.fetchall()
    return None


@dataclass(frozen=True)
class StoreSpec:
    """How a worker reads the store itself: ``kind`` "sqlite" (``where`` = file path) or
    "postgres" (``where`` = psycopg connect arguments), the table and its schema."""
    kind: str
    where: Any
    table: str
    schema: str = ""


def store_spec(recorder: Any) -> StoreSpec | None:
    """The store as another process can open it, or None (another recorder, an in-memory
    SQLite store)."""
    kind = _kind(recorder)
    if kind == "sqlite":
        pool = recorder.datastore.pool
        if getattr(pool, "is_sqlite_memory_mode", True) or not pool.db_name:
            return None
        return StoreSpec("sqlite", pool.db_name, recorder.events_table_name)
    if kind == "postgres":
        given = recorder.datastore.pool.kwargs
        if not isinstance(given, dict):
            return None
        kwargs = {k: v for k, v in given.items() if k != "row_factory"}
        return StoreSpec("postgres", kwargs, recorder.events_table_name, recorder.datastore.schema)
    return None


@contextlib.contextmanager
def listen(recorder: Any) -> Iterator[Any]:
    """A connection LISTENing on the channel the store NOTIFYs in every event transaction
    (PostgreSQL), or None for a store without one. Errors connecting propagate."""
    if _kind(recorder) != "postgres":
        yield None
        return
    from psycopg.sql import SQL, Identifier

    with recorder.datastore.get_connection() as conn:
        conn.execute(SQL("LISTEN {0}").format(Identifier(recorder.channel_name)))
        yield conn


SNAPSHOT_EVERY_ENV = "DISPATCH_SNAPSHOT_EVERY"
DEFAULT_SNAPSHOT_EVERY = 50


class TicketStore(Application[UUID]):
    """The tickets' events and snapshots, read (and, through ``DispatchApp``, written).

    ``DISPATCH_SNAPSHOT_EVERY`` (environment or ``env``): snapshot a ticket at every
    N-th version, so a long history loads from the snapshot plus the events after it;
    0 turns snapshots off (tickets load from their full history) [default 50]."""

    name = "dispatch"

    def construct_env(self, name: str, env: Any = None) -> Any:
        environment = super().construct_env(name, env)
        raw = environment.get(SNAPSHOT_EVERY_ENV) or str(DEFAULT_SNAPSHOT_EVERY)
        try:
            every = int(raw)
            if every < 0:
                raise ValueError
        except ValueError:
            raise DispatchError(f"{SNAPSHOT_EVERY_ENV}={raw!r}: give a whole number of events (0 = off)") from None
        # per instance, from the setting (the base class declares it as a class variable)
        self.snapshotting_intervals = {Ticket: every} if every else {}  # type: ignore[misc]
        environment["IS_SNAPSHOTTING_ENABLED"] = "y" if every else "n"
        # dispatch's own recorders (fenced positions, the fast insert), above
        topic = recorder_topic(environment.get("PERSISTENCE_MODULE") or "")
        if topic and not environment.get("PROCESS_RECORDER_TOPIC"):
            environment["PROCESS_RECORDER_TOPIC"] = topic
        return environment

    def construct_recorder(self) -> Any:
        # A process recorder keeps Tracking records in the same transaction as events.
        return self.factory.process_recorder()

    def get_ticket(self, ticket_id: UUID) -> Ticket:
        try:
            ticket: Ticket = self.repository.get(ticket_id)
        except AggregateNotFoundError:
            raise TicketNotFound(ticket_id) from None
        return ticket
