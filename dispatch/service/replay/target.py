"""Where a rebuild writes: a fresh database with the projection tables and a copy of
the reference data, so ``dispatch --db TARGET dashboard …`` works on it.

A target is a new database or one an earlier replay made (its marker says so; its
projections are dropped and rebuilt): never the live database (compared by real path),
never another database. While the rebuild runs the target is marked incomplete, and
commands refuse to read it. The default is a new SQLite file ``replay-<timestamp>.db`` in
the working directory; ``scratch()`` makes a temporary one that is removed afterwards
(``--verify``), or at the next run if that one was killed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from dispatch.adapters.config import Database, resolve_db
from dispatch.adapters.database import create_read_engine, create_sqlite_file, examine, store_reference, write_marker
from dispatch.adapters.dberrors import translate_db_errors
from dispatch.domain.errors import UnsafeTarget
from dispatch.domain.reference import Reference
from dispatch.projections import create_tables
from dispatch.projections.tables import METADATA

__all__ = ["Target", "default_target", "open_target", "scratch"]


@dataclass
class Target:
    db: Database
    engine: Engine

    @property
    def display(self) -> str:
        return self.db.url.database if self.db.is_sqlite and self.db.url.database else self.db.display

    def finish(self) -> None:
        """The rebuild is complete: the target may be read."""
        write_marker(self.engine, "replay", state="complete")

    def close(self) -> None:
        self.engine.dispose()


def default_target(now: datetime) -> str:
    """``replay-<timestamp>.db`` in the working directory (never an existing file)."""
    stem = f"replay-{now.strftime('%Y%m%dT%H%M%S')}"
    path, n = Path(f"{stem}.db"), 1
    while path.exists():
        n += 1
        path = Path(f"{stem}-{n}.db")
    return str(path.absolute())


def _same_database(a: Database, b: Database) -> bool:
    """The same file (real paths: ``sub/../live.db`` and symlinks resolve) or the same server database."""
    if a.is_sqlite != b.is_sqlite:
        return False
    if a.is_sqlite:
        pa, pb = a.url.database or "", b.url.database or ""
        if os.path.exists(pa) and os.path.exists(pb):
            return os.path.samefile(pa, pb)
        return os.path.realpath(pa) == os.path.realpath(pb)
    ua, ub = a.url, b.url
    return ((ua.host or "localhost"), ua.port or 5432, ua.database) == ((ub.host or "localhost"), ub.port or 5432,
                                                                        ub.database)


def _look_first(path: str) -> None:
    """An existing file that is not a replay's is refused before a byte of it changes."""
    from dispatch.adapters.database import examine_file

    found = examine_file(path)
    if found.what == "unreadable":
        raise UnsafeTarget(f"{path} is not a database ({found.reason}); give a new path with --into")
    if found.what == "foreign" or found.what == "legacy" or (found.what == "dispatch" and found.kind != "replay"):
        what = {"dispatch": f"a {found.kind} dispatch database", "legacy": "a dispatch database"}.get(
            found.what, "another tool's database")
        raise UnsafeTarget(f"{path} is {what} that no replay made; a replay writes only into a new database "
                           "or one it made itself: give a new path with --into")


def _claim_target(db: Database) -> Engine:
    """An engine on a target this replay may write: a new database, or one an earlier replay made."""
    path = db.url.database if db.is_sqlite else None
    if path and path != ":memory:" and not os.path.exists(path):
        create_sqlite_file(path)
    elif path and path != ":memory:":
        _look_first(path)
    engine = create_read_engine(db)
    try:
        found = examine(engine)
        where = path or db.display
        if found.what == "dispatch" and found.kind == "replay":
            METADATA.drop_all(engine)  # an earlier replay's projections: derived data, rebuilt now
        elif found.what != "empty":
            what = {"dispatch": f"a {found.kind} dispatch database", "legacy": "a dispatch database",
                    "foreign": "another tool's database"}.get(found.what, "a database")
            raise UnsafeTarget(f"{where} is {what} that no replay made; a replay writes only into a new database "
                               "or one it made itself: give a new path with --into")
        write_marker(engine, "replay", state="incomplete")
    except BaseException:
        engine.dispose()
        raise
    return engine


def open_target(url: str, reference: Reference, *, source: str, live: Database | None = None) -> Target:
    """Open ``url`` as a rebuild target: refuse the live database and anything no replay made,
    mark it incomplete, create the projection tables, copy the reference data. ``finish()``
    marks it complete; a killed replay leaves it marked incomplete (and unreadable)."""
    db = resolve_db(url)
    if live is not None and _same_database(db, live):
        raise UnsafeTarget("the rebuild target is the live database: give another one with --into")
    with translate_db_errors(db):
        engine = _claim_target(db)
        try:
            create_tables(engine)
            store_reference(engine, source, reference.to_dict())
        except BaseException:
            engine.dispose()
            raise
    return Target(db, engine)


_PID_FILE = "owner.pid"


def _remove_stale_scratch(base: str) -> None:
    """Scratch folders left by a killed ``--verify`` (their owner process is gone)."""
    for folder in Path(base).glob("dispatch-verify-*"):
        try:
            pid = int((folder / _PID_FILE).read_text())
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (OSError, ValueError):
            continue  # not ours to judge (another user's, or still being made)


@contextmanager
def scratch(reference: Reference, *, source: str) -> Iterator[Target]:
    """A temporary SQLite target, removed afterwards (and at the next run if this one is killed)."""
    base = tempfile.gettempdir()
    _remove_stale_scratch(base)
    folder = tempfile.mkdtemp(prefix="dispatch-verify-", dir=base)
    try:
        (Path(folder) / _PID_FILE).write_text(str(os.getpid()))
        target = open_target(str(Path(folder) / "scratch.db"), reference, source=source)
        try:
            yield target
        finally:
            target.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
