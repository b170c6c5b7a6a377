"""The read-model database: one SQLAlchemy engine per process, the table that keeps the
reference data every process of a deployment shares, and the marker that says what a
database is.

The marker (table ``dispatch_meta``) is written when dispatch creates a database:
``schema`` = ``dispatch``, ``schema_version``, ``kind`` (``live``, ``replay`` or ``demo``)
and ``state`` (``complete``, or ``incomplete`` while a replay writes it). Opening a
database reads it with one cheap query, so a command never writes into another tool's
file, a half-built replay, or a database made by a newer or older dispatch.
"""

from __future__ import annotations

import json
import os
import threading
import weakref
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import (JSON, Column, DateTime, Engine, Integer, MetaData, String, Table, TypeDecorator, create_engine,
                        event, inspect, select, text)
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from dispatch.adapters.config import Database

__all__ = ["BINARY_RESULTS", "SCHEMA_VERSION", "SERIAL_PLANS", "Examined", "OneAtATime", "UtcDateTime", "create_indexes", "create_read_engine", "create_sqlite_file", "ensure_created",
           "examine", "load_stored_reference", "record_reference_change", "store_reference", "write_marker"]

SCHEMA_VERSION = 7  # 2: case numbers, centre deadlines, holds, closed-out calls; 3: when a ticket ended;
# 4: the calls' durations (figures in the database); 5: (place, time) indexes of calls and first dispatches;
# 6: a ticket's position and first photo (the console's rows, the map of reports); 7: how often a
# ticket's deadlines were moved (a what-if recomputes the unmoved ones from their rows)


METADATA = MetaData()
reference_data = Table(
    "reference_data", METADATA,
    Column("id", Integer, primary_key=True),
    Column("source", String(500), nullable=False),
    Column("body", JSON, nullable=False),
)
dispatch_meta = Table(
    "dispatch_meta", METADATA,
    Column("key", String(100), primary_key=True),
    Column("value", String(500), nullable=False),
)
# Every reference change that removed something in use, made with ``init --force``.
reference_changes = Table(
    "reference_changes", METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", String(40), nullable=False),
    Column("source", String(500), nullable=False),
    Column("removed", JSON, nullable=False),
)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, stored as naive UTC, aware UTC out.

    On SQLite the column is fixed-width text ``YYYY-MM-DD HH:MM:SS.ffffff`` (SQLite's own
    datetime format, which sorts and compares correctly) converted here in one C-level call,
    which keeps bulk writes fast; on PostgreSQL it is ``timestamp without time zone``.
    """

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        return dialect.type_descriptor(String(26) if dialect.name == "sqlite" else DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Any) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given to a UTC column")
        naive = value.astimezone(timezone.utc).replace(tzinfo=None)
        return naive.isoformat(" ", "microseconds") if dialect.name == "sqlite" else naive

    def process_result_value(self, value: Any, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=timezone.utc)  # type: ignore[no-any-return]


def create_sqlite_file(path: str) -> None:
    """Create an empty database file readable by its owner only (0600); SQLite gives its
    -wal and -shm files the same permissions."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


# Connections kept open for reuse: a web server's request threads (up to anyio's 40) each hold one
# while they read. SQLAlchemy's default keeps 5 and opens, then closes, one for every request over
# that — under 20 concurrent users most reads paid for a new connection (on SQLite its PRAGMAs too).
POOL = {"pool_size": 20, "max_overflow": 10}


def create_read_engine(db: Database) -> Engine:
    if db.is_sqlite:
        engine = create_engine(db.url, connect_args={"timeout": 30}, **POOL)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    # JIT compilation costs ~50–90 ms a statement and pays off only on queries far longer than a
    # read model's: the figures' aggregates over a period ran faster without it. random_page_cost
    # 1.1 (the usual setting for SSDs; PostgreSQL's 4 assumes spinning disks): otherwise the planner
    # reads a whole district's month through the time index rather than fetch one street's rows
    # through its (place, time) index (a street's month of calls: 146 → 28 ms, docs/benchmarks-read-side.md)
    engine = create_engine(db.url, pool_pre_ping=True, **POOL, json_serializer=lambda o: json.dumps(o, ensure_ascii=False),
                           connect_args={"options": "-c jit=off -c random_page_cost=1.1"})
    _binary_results(engine)
    return engine


# An execution option: PostgreSQL sends the statement's rows in its binary format (psycopg loads
# them as the same Python values). Text sends a bytea as hex and a float array as digits — twice
# the bytes and a parse: a district's quarter of merged minutes (7.9 MB) 69 → 26 ms to fetch.
BINARY_RESULTS = "binary_results"


# An execution option: PostgreSQL plans the statement without parallel workers (``SET LOCAL``,
# until its transaction ends). For statements read several at a time on connections of their own
# (a what-if's), whose workers would only contend with each other for the same cores: a quarter's
# what-if at 1.27 M on two, 9–11 → 7.3–8.5 s, 16–18 → 13–15 CPU-seconds (docs/benchmarks-read-side.md).
SERIAL_PLANS = "serial_plans"


def _binary_results(engine: Engine) -> None:
    from psycopg.pq import Format

    @event.listens_for(engine, "before_cursor_execute")
    def _binary(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if context is not None and context.execution_options.get(BINARY_RESULTS):
            cursor.format = Format.BINARY
        if context is not None and context.execution_options.get(SERIAL_PLANS):
            cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")


@dataclass(frozen=True)
class Examined:
    """What a database holds: ``empty``, ``dispatch`` (with its marker), ``legacy`` (a dispatch
    database made before the marker existed), ``foreign`` (another tool's tables) or, for a file
    read by ``examine_file``, ``unreadable`` (no database: ``reason`` says why)."""

    what: str
    marker: dict[str, str]
    tables: tuple[str, ...]
    reason: str = ""

    @property
    def kind(self) -> str | None:
        return self.marker.get("kind")

    @property
    def version(self) -> int:
        return int(self.marker.get("schema_version", "0") or 0)


def examine(engine: Engine) -> Examined:
    """One query for the table names, one for the marker."""
    tables = tuple(sorted(inspect(engine).get_table_names()))
    if dispatch_meta.name in tables:
        with engine.connect() as conn:
            marker = {k: v for k, v in conn.execute(select(dispatch_meta.c.key, dispatch_meta.c.value))}
    else:
        marker = {}
    return _classify(tables, marker)


def _classify(tables: tuple[str, ...], marker: dict[str, str]) -> Examined:
    if dispatch_meta.name in tables and marker.get("schema") == "dispatch":
        return Examined("dispatch", marker, tables)
    if not tables:
        return Examined("empty", {}, tables)
    if reference_data.name in tables and dispatch_meta.name not in tables:
        return Examined("legacy", {}, tables)
    return Examined("foreign", {}, tables)


def examine_file(path: str) -> Examined:
    """What an existing SQLite file holds, read without writing a byte to it or beside it
    (read-only and immutable: no journal mode switched, no -wal or -shm made), so another tool's
    file or a damaged one is refused untouched (``unreadable``: no database at all). A dispatch
    file's newest changes may still be in its -wal: it may look ``empty`` here, never ``foreign``."""
    import sqlite3

    try:
        conn = sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro&immutable=1", uri=True)
    except sqlite3.DatabaseError as error:
        return Examined("unreadable", {}, (), reason=str(error))
    try:
        tables = tuple(sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")))
        marker: dict[str, str] = {}
        if dispatch_meta.name in tables:
            marker = {str(k): str(v) for k, v in conn.execute(f"SELECT key, value FROM {dispatch_meta.name}")}
    except sqlite3.DatabaseError as error:
        return Examined("unreadable", {}, (), reason=str(error))
    finally:
        conn.close()
    return _classify(tables, marker)


def write_marker(engine: Engine, kind: str, state: str = "complete") -> None:
    dispatch_meta.create(engine, checkfirst=True)
    values = {"schema": "dispatch", "schema_version": str(SCHEMA_VERSION), "kind": kind, "state": state}
    table: Any = dispatch_meta
    with engine.begin() as conn:
        existing = {k for (k,) in conn.execute(select(dispatch_meta.c.key))}
        if "created_at" not in existing:
            values["created_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        for key, value in values.items():
            if key in existing:
                conn.execute(table.update().where(table.c.key == key).values(value=value))
            else:
                conn.execute(table.insert().values(key=key, value=value))


def load_stored_reference(engine: Engine) -> tuple[str, dict[str, Any]] | None:
    reference_data.create(engine, checkfirst=True)
    with engine.connect() as conn:
        row = conn.execute(select(reference_data.c.source, reference_data.c.body)
                           .where(reference_data.c.id == 1)).first()
    return (row[0], row[1]) if row else None


def store_reference(engine: Engine, source: str, body: dict[str, Any]) -> None:
    reference_data.create(engine, checkfirst=True)
    with engine.begin() as conn:
        conn.execute(reference_data.delete())
        conn.execute(reference_data.insert().values(id=1, source=source, body=body))


def record_reference_change(engine: Engine, source: str, removed: dict[str, list[str]], at: datetime) -> None:
    reference_changes.create(engine, checkfirst=True)
    with engine.begin() as conn:
        conn.execute(reference_changes.insert().values(
            at=at.isoformat(), source=source, removed=removed))


_created: weakref.WeakKeyDictionary[Engine, set[int]] = weakref.WeakKeyDictionary()
_creating = threading.Lock()  # the threads of one process (a web server's) meeting a new database


def ensure_created(engine: Engine, metadata: MetaData, *, indexes: bool = False) -> None:
    """Create ``metadata``'s tables on ``engine`` if missing (``indexes``: and the indexes a later
    version added to tables made before it): once per engine, one thread at a time."""
    if id(metadata) in _created.get(engine, ()):
        return
    with _creating:
        create_all(engine, metadata)
        if indexes:
            create_indexes(engine, metadata.sorted_tables)
        _created.setdefault(engine, set()).add(id(metadata))


def create_indexes(engine: Engine, tables: Any) -> None:
    """Every index of ``tables`` that is missing (one a later version added, on a table made before
    it), safe when another process creates the same one at once."""
    for table in tables:
        for index in table.indexes:
            try:
                with engine.begin() as conn:
                    index.create(conn, checkfirst=True)
            except Exception as error:  # noqa: BLE001 - another process created it meanwhile
                if "already exists" not in str(error):
                    raise


def create_all(engine: Engine, metadata: MetaData) -> None:
    """``metadata.create_all``, safe when another process creates the same tables at once."""
    try:
        metadata.create_all(engine, checkfirst=True)
    except (OperationalError, ProgrammingError, IntegrityError) as error:
        # another process created a table between the check and the CREATE: check again
        if "already exists" not in str(error) and "duplicate key" not in str(error):
            raise
        metadata.create_all(engine, checkfirst=True)


class OneAtATime:
    """A job that one process of a deployment runs at a time — the web's watchdog and notifier
    when several web workers (or servers) share a PostgreSQL database. ``mine()`` says whether
    this process runs it now: it takes a session advisory lock if the lock is free and keeps it,
    on a connection of its own, until ``release()``, the process's end or the connection's loss
    (then another process takes it at its next look). On SQLite one process serves: always mine."""

    def __init__(self, engine: Engine, name: str):
        import zlib

        self.engine, self.name = engine, name
        self.key = zlib.crc32(name.encode()) & 0x7FFFFFFF
        self._conn: Any = None

    def mine(self) -> bool:
        if self.engine.dialect.name != "postgresql":
            return True
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT 1"))
                self._conn.commit()  # never left idle in a transaction
                return True
            except Exception:  # noqa: BLE001 - the connection is gone, and the lock with it
                self._drop()
        conn = self.engine.connect()
        try:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:space, :key)"),
                               {"space": _JOB_LOCKS, "key": self.key}).scalar()
            conn.commit()
        except BaseException:
            conn.close()
            raise
        if got:
            self._conn = conn
            return True
        conn.close()
        return False

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:space, :key)"), {"space": _JOB_LOCKS, "key": self.key})
                self._conn.commit()
            except Exception:  # noqa: BLE001 - gone already: the lock went with the connection
                pass
            self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        try:
            conn.invalidate()  # never back to the pool: a lock held by a pooled connection would outlive the job
        except Exception:  # noqa: BLE001
            pass
        conn.close()


_JOB_LOCKS = 7_317_002  # the advisory locks' first key for OneAtATime's jobs (the second: the job's name)
