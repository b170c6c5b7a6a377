"""One ``bootstrap()`` per process: database, reference data, application, clock.
Nothing connects at import time.

Opening checks what the database is (``dispatch.adapters.database.examine``): only a caller that may
create one (``create=True``: ``dispatch init``, the demo, library use) gets a new
database; every other command refuses a missing file, an empty database, another tool's
database, a database made by another dispatch schema version, and an interrupted replay.
"""

from __future__ import annotations

from dataclasses import replace

import os
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text

from dispatch.adapters import holiday_table
from dispatch.adapters.case_register import CaseNumbers
from dispatch.adapters.config import Database, resolve_db
from dispatch.adapters.database import (SCHEMA_VERSION, Examined, create_read_engine, create_sqlite_file, examine, examine_file,
                                        load_stored_reference, store_reference, write_marker)
from dispatch.adapters.dberrors import translate_db_errors
from dispatch.adapters.logs import configure_logging
from dispatch.adapters.vault import Vault
from dispatch.domain.clock import Clock, SystemClock
from dispatch.domain.errors import DatabaseNeedsUpgrade, DatabaseNotFound, NotADispatchDatabase
from dispatch.domain.reference import Reference, load_reference, reference_from_dict
from dispatch.domain.timewindow import TimeWindow

if TYPE_CHECKING:
    from dispatch.adapters.eventstore import TicketStore
    from dispatch.service.application import DispatchApp

__all__ = ["Runtime", "bootstrap", "open_database"]


class Runtime:
    """A process's wiring. ``app`` (the event-sourced application: commands in, events out) is
    built when first asked for, unless ``bootstrap`` built it already: a command that only reads
    the read models never imports it. Setting ``clock`` hands the new clock to the application
    too (the business-time window moves with it)."""

    def __init__(self, db: Database, engine: Engine, reference: Reference, app: DispatchApp | None = None,
                 clock: Clock | None = None, kafka: tuple[str | None, str | None] = (None, None), *,
                 make_app: Callable[[], DispatchApp] | None = None,
                 make_store: Callable[[], TicketStore] | None = None, time_window: TimeWindow | None = None,
                 vault: Vault | None = None, case_numbers: CaseNumbers | None = None, store_table: str | None = None,
                 plain_store: bool = False):
        self.db, self.engine, self.reference = db, engine, reference
        self._app, self._make_app = app, make_app
        self._store: TicketStore | None = None
        self._make_store = make_store
        self._building = threading.Lock()
        self.time_window = time_window or TimeWindow()
        self.vault = vault or Vault(engine)
        self.case_numbers = case_numbers
        self.store_table = store_table  # the event store's table when it lives in ``engine``'s database
        # its events stored as plain JSON (no cipher, compressor or other transcoder): one ticket's
        # events may be read from ``store_table`` directly (``dispatch.projections.decode.ticket_records``)
        self.plain_store = plain_store and store_table is not None
        self.projector: Any = None  # a process's one projector, if it has one (reads wait for it: ``for_reading``)
        self.clock = clock or SystemClock()
        self._kafka_options = kafka
        self._kafka: Any = None

    @property
    def app(self) -> DispatchApp:
        if self._app is None:
            with self._building:  # a web server's threads meeting it at once build one
                if self._app is None:
                    assert self._make_app is not None
                    app = self._make_app()
                    app.clock, app.time_window, app.vault, app.case_numbers = (
                        self._clock, self.time_window, self.vault, self.case_numbers)
                    self._app = app
        return self._app

    @property
    def store(self) -> TicketStore:
        """The tickets' events and snapshots, to read one ticket: the application when it is
        built, else the store alone (``eventstore.TicketStore``: no command models, no handlers)."""
        if self._app is not None or self._make_store is None:
            return self.app
        if self._store is None:
            with self._building:
                if self._store is None:
                    self._store = self._make_store()
        return self._store

    @property
    def kafka(self) -> Any:
        """This process's ``KafkaSettings`` (its options, else ``DISPATCH_KAFKA`` /
        ``DISPATCH_TOPIC_PREFIX``); built when first asked (a process without Kafka never
        imports its client), and nothing connects here."""
        if self._kafka is None:
            from dispatch.adapters.kafka import KafkaSettings

            self._kafka = KafkaSettings.from_env(*self._kafka_options)
        return self._kafka

    @property
    def locator(self) -> Any:
        """The ``GridLocator`` of this reference data's grid boundaries, built when first asked."""
        if getattr(self, "_locator", None) is None:
            from dispatch.domain.geo import GridLocator

            self._locator = GridLocator(self.reference.boundaries)
        return self._locator

    @property
    def media(self) -> Any:
        """Where report photos are kept (``dispatch.adapters.media``): ``DISPATCH_MEDIA_DIR``, else beside
        the SQLite file, else ``./dispatch-media``."""
        if getattr(self, "_media", None) is None:
            from dispatch.adapters.media import MediaStore

            default = f"{self.db.url.database}.media" if self.db.is_sqlite and self.db.url.database else "dispatch-media"
            self._media = MediaStore(os.environ.get("DISPATCH_MEDIA_DIR") or default)
        return self._media

    def forget_connections(self) -> None:
        """In a forked child process: the parent's application, store and pooled connections are
        left alone (never used, never closed here); the next use opens this process's own."""
        self.engine.dispose(close=False)
        self._app = self._store = None
        self._building = threading.Lock()

    @property
    def clock(self) -> Clock:
        return self._clock

    @clock.setter
    def clock(self, clock: Clock) -> None:
        self._clock = clock
        if self._app is not None:
            self._app.clock = clock

    def close(self) -> None:
        for opened in (self._app, self._store):
            if opened is not None:
                opened.close()
        self.engine.dispose()


def bootstrap(
    db_url: str | None = None,
    *,
    clock: Clock | None = None,
    reference_file: str | Path | None = None,
    env: dict[str, str] | None = None,
    create: bool = True,
    kind: str = "live",
    kafka: str | None = None,
    topic_prefix: str | None = None,
    log_level: str | None = None,
) -> Runtime:
    """A process's wiring, once: logging (``log_level``; the CLI configures its own first), the
    clock, the database named by ``db_url`` (see ``dispatch.adapters.config``) with its event store and
    read models, and the Kafka settings (``kafka``, ``topic_prefix``, else the environment).

    The reference data lives in the database, so every process of a deployment
    shares it: ``reference_file`` replaces it; otherwise the stored copy is used,
    and a new database gets the bundled sample. ``create=False`` refuses a database
    that does not exist yet; ``kind`` is what a new one is marked as.
    """
    if log_level is not None:
        configure_logging(log_level)
    db = resolve_db(db_url)
    store_env = db.eventstore_env() | (env or {})
    with translate_db_errors(db):
        engine = open_database(db, create=create, kind=kind)
        try:
            with _schema_lock(engine):
                reference = replace(_reference(engine, reference_file), holidays=holiday_table.in_force(engine))

            def make_app() -> DispatchApp:
                from dispatch.service.application import DispatchApp

                with translate_db_errors(db), _schema_lock(engine):
                    return DispatchApp(env=store_env, reference=reference)

            def make_store() -> TicketStore:
                from dispatch.adapters.eventstore import TicketStore

                with translate_db_errors(db), _schema_lock(engine):
                    return TicketStore(env=store_env)

            store_table = _store_table(db, store_env)
            runtime = Runtime(db=db, engine=engine, reference=reference, make_app=make_app, make_store=make_store,
                              clock=clock,
                              kafka=(kafka, topic_prefix), time_window=TimeWindow.from_env(_settings(env)),
                              vault=Vault(engine), case_numbers=CaseNumbers(engine, with_events=store_table is not None),
                              store_table=store_table, plain_store=_plain(store_env))
            if create:
                runtime.app  # a database made now gets its event store now, under the schema lock
        except BaseException:
            engine.dispose()
            raise
    return runtime


def freeze_startup() -> None:
    """Once a long-running process (a web worker, a consumer) has started, the objects it made
    doing so (modules, the reference data, the tables' metadata: ~250,000 here) stay as long as it
    does: moved out of the cyclic collector's sight (``gc.freeze``), its full collections stop
    walking them again and again. Measured: a district's quarter by community and week on
    PostgreSQL, the process's CPU per question 329 → 258 ms median, 528 → 282 ms p95 (the
    full collections fall inside some questions). Not in ``bootstrap`` itself: a test process
    makes many runtimes, and what a frozen one holds in cycles would never be freed.

    The youngest generation is then collected every 10,000 allocations, not Python's 700: a
    question's rows become tens of thousands of short-lived dicts and tuples, freed by their
    reference counts, and at 700 the collector walked them (and every 10th and 100th time the
    older objects too) dozens of times a question. Measured, the same quarter by community and
    week: CPU per question 226–231 → 141–153 ms, p50 333–352 → 222–249 ms. (Cyclic garbage waits
    a little longer to be freed: at most some thousands of objects.)"""
    import gc

    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def _store_table(db: Database, store_env: Mapping[str, str]) -> str | None:
    """The event store's table when it is eventsourcing's default one in the database itself
    (``dispatch.projections.poller.store_top`` then reads its last position in one query)."""
    own = db.eventstore_env()
    same = all(store_env.get(key) == own.get(key) for key in ("PERSISTENCE_MODULE", "SQLITE_DBNAME", "POSTGRES_DBNAME",
                                                               "POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_SCHEMA"))
    if not same or own.get("SQLITE_DBNAME") == ":memory:":
        return None
    # eventsourcing's names: "stored_events" on SQLite, "<application name>_events" on PostgreSQL
    return "stored_events" if db.is_sqlite else "dispatch_events"


def _plain(store_env: Mapping[str, str]) -> bool:
    """Whether the event store keeps eventsourcing's plain JSON (no setting of the application's
    environment, or of the process's, changes how events are written)."""
    settings = {**os.environ, **store_env}
    return not any(settings.get(key) for key in ("CIPHER_TOPIC", "COMPRESSOR_TOPIC", "TRANSCODER_TOPIC", "MAPPER_TOPIC"))


def _settings(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return {**os.environ, **(env or {})}


def open_database(db: Database, *, create: bool, kind: str = "live") -> Engine:
    """An engine on ``db`` after checking what it holds (see the module docstring)."""
    path = db.url.database if db.is_sqlite else None
    if path and path != ":memory:" and not os.path.exists(path):
        if not create:
            raise DatabaseNotFound(f"no dispatch database at {path} (create one with 'dispatch --db {path} init')")
        create_sqlite_file(path)
    elif path and path != ":memory:":
        _look_first(db, path, create)
    engine = create_read_engine(db)
    try:
        with _schema_lock(engine):
            found = examine(engine)
            _check(db, found, create)
            if found.what == "empty":
                write_marker(engine, kind)
    except BaseException:
        engine.dispose()
        raise
    return engine


def _look_first(db: Database, path: str, create: bool) -> None:
    """An existing file is read first without a byte written (``database.examine_file``): another
    tool's file, a damaged one, or one of another schema is refused exactly as it was."""
    seen = examine_file(path)
    if seen.what != "empty":  # an empty look may be a new dispatch file whose tables are still in its -wal
        _check(db, seen, create)


def _check(db: Database, found: Examined, create: bool) -> None:
    where = db.url.database if db.is_sqlite else db.display
    if found.what == "unreadable":
        raise NotADispatchDatabase(f"{where} is not a database dispatch can read ({found.reason}); "
                                   "dispatch will not write into it")
    if found.what == "foreign":
        shown = ", ".join(found.tables[:6]) + (", …" if len(found.tables) > 6 else "")
        raise NotADispatchDatabase(f"{where} is not a dispatch database (it holds other tables: {shown}); "
                                   "dispatch will not write into it")
    if found.what == "legacy":
        raise DatabaseNeedsUpgrade(f"{where} was made by an earlier dispatch: run 'dispatch --db {where} upgrade' "
                                   "once, then try again")
    if found.what == "empty" and not create:
        raise DatabaseNotFound(f"{where} holds no dispatch data (create it with 'dispatch --db {where} init')")
    if found.what == "dispatch":
        if found.version > SCHEMA_VERSION:
            raise DatabaseNeedsUpgrade(f"{where} was made by a newer dispatch (schema {found.version}; "
                                       f"this one reads {SCHEMA_VERSION}): upgrade the package")
        if found.version < SCHEMA_VERSION:
            raise DatabaseNeedsUpgrade(f"{where} has schema {found.version}: run 'dispatch --db {where} upgrade'")
        if found.marker.get("state") == "incomplete":
            raise NotADispatchDatabase(f"{where} is an interrupted replay (incomplete): delete it and replay again")


@contextmanager
def _schema_lock(engine: Engine) -> Iterator[None]:
    """Processes that start together on a new PostgreSQL database (two engines, a relay…)
    would race to create the same tables ("tuple concurrently updated"): one at a time."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _SCHEMA_LOCK})
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _SCHEMA_LOCK})


_SCHEMA_LOCK = 7_317_001  # any constant shared by every dispatch process


def _reference(engine: Engine, reference_file: str | Path | None) -> Reference:
    if reference_file is not None:
        reference = load_reference(reference_file)
        store_reference(engine, str(reference_file), reference.to_dict())
        from dispatch.projections import durations

        durations.forget(engine)  # the projection counts durations under the stored calendar
        return reference
    stored = load_stored_reference(engine)
    if stored is not None:
        source, body = stored
        return reference_from_dict(body, source=f"stored reference data (from {source})", stored=True)
    reference = load_reference(None)
    store_reference(engine, "bundled sample", reference.to_dict())
    return reference
