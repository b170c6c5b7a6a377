"""Embedded mode: poll the event store's notification log into the projections.

eventsourcing's ProjectionRunner subscribes only on PostgreSQL; polling works on both
backends and uses the same ``apply_records`` as the Kafka consumer and a rebuild.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from dispatch.projections.tables import ensure_tables, stored_position

__all__ = ["STORE_SOURCE", "Projector", "catch_up", "for_reading", "store_top"]

STORE_SOURCE = "store"


def catch_up(runtime: Any, *, until: datetime | None = None, batch_size: int = 2000,
             applied_to: Callable[[int, int, set[str]], None] | None = None) -> int:
    """Apply the notifications recorded since the stored position; return #events applied.

    ``until`` applies only events whose business time is at or before it (time travel).
    The position still moves past the events left out, so a database caught up with
    ``until`` is a snapshot for that instant: rebuild into a fresh database for it.
    ``applied_to(after, up_to, ticket_ids)`` hears of each page applied here: the positions it
    took the read models from and to, and the tickets whose events it applied.
    """
    engine = runtime.engine
    stored = stored_position(engine, STORE_SOURCE)
    top = store_top(engine, getattr(runtime, "store_table", None))
    if top is not None and top <= (stored or 0):
        return 0  # nothing new: a read command need not load the projection code, nor the store's
    from dispatch.projections.apply_events import PositionMoved, apply_records
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
        if applied_to is not None:
            applied_to(stored or 0, last, {str(r.ticket_id) for r in records})
        stored = last
        if read < batch_size:
            break
    return applied


def for_reading(runtime: Any) -> None:
    """Before a read of the read models: bring them up to what the store holds now. A process
    with a ``Projector`` (``runtime.projector``: an embedded web server) waits for it rather than
    project itself — its reads neither repeat one another's work nor queue for one another's
    projection lock; a projector that does not get there in time is not waited for further."""
    projector = getattr(runtime, "projector", None)
    if projector is None:
        catch_up(runtime)
        return
    ensure_tables(runtime.engine)  # a database nothing was projected into yet has its tables all the same
    top = store_top(runtime.engine, getattr(runtime, "store_table", None))
    if top is None or not projector.wait_for(top):
        catch_up(runtime)


class Projector:
    """The one thread of a process that catches the read models up (``catch_up``): at once when
    poked (a write made here), else every ``every`` seconds (what other processes wrote). It
    tells ``moved`` when it applied something, and wakes the reads waiting for a position
    (``wait_for``). Started with the server (``start``), or by its first poke or wait.
    It remembers which tickets its last pages moved (``moved_between``), so the live pages'
    watcher need not compare every open ticket to learn it."""

    KEPT = 1024  # pages remembered

    def __init__(self, runtime: Any, *, moved: Any = None, every: float = 0.25, patience: float = 10.0):
        self.runtime, self.moved, self.every, self.patience = runtime, moved, every, patience
        self.position = 0  # the read models hold every event up to here
        self._pages: deque[tuple[int, int, frozenset[str]]] = deque(maxlen=self.KEPT)
        self._changed = threading.Condition()
        self._poked = threading.Event()
        self._stopping = threading.Event()
        self._thread: Any = None
        self._starting = threading.Lock()

    def poke(self) -> None:
        self.start()
        self._poked.set()

    def wait_for(self, position: int) -> bool:
        """Whether the read models reached ``position`` within ``patience`` seconds."""
        if self.position >= position:
            return True
        self.poke()
        with self._changed:
            return self._changed.wait_for(lambda: self.position >= position, self.patience)

    def moved_between(self, after: int, up_to: int) -> set[str] | None:
        """The tickets whose events this projector applied from position ``after`` to ``up_to``
        (perhaps a few more), or None when it did not apply all of that range itself (another
        process or thread did some, or it is forgotten)."""
        with self._changed:
            pages = list(self._pages)
        ids: set[str] = set()
        reached = after
        for start, end, moved in pages:
            if reached >= up_to:
                break
            if end <= reached:
                continue
            if start > reached:
                return None  # a gap: applied elsewhere
            ids |= moved
            reached = end
        return ids if reached >= up_to else None

    def _applied(self, after: int, up_to: int, ids: set[str]) -> None:
        with self._changed:
            self._pages.append((after, up_to, frozenset(ids)))

    def stop(self) -> None:
        self._stopping.set()
        self._poked.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def start(self) -> None:
        """Run (if not running): from now on what any process writes is projected within a tick."""
        if self._thread is None or not self._thread.is_alive():
            with self._starting:
                if (self._thread is None or not self._thread.is_alive()) and not self._stopping.is_set():
                    self._thread = threading.Thread(target=self._run, name="dispatch-projector", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        from dispatch.adapters.logs import get_logger

        failing = False
        while not self._stopping.is_set():
            self._poked.wait(self.every)
            self._poked.clear()
            try:
                applied = catch_up(self.runtime, applied_to=self._applied)
                reached = stored_position(self.runtime.engine, STORE_SOURCE) or 0
                failing = False
            except Exception:  # noqa: BLE001 - tried again at the next tick; waiting reads stop waiting
                if not failing:
                    get_logger("dispatch.projections").exception("the read models could not be caught up")
                failing = True
                continue
            with self._changed:
                self.position = reached
                self._changed.notify_all()
            if applied and self.moved is not None:
                self.moved()


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
