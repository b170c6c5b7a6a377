"""Where a rebuild writes: a fresh database with the projection tables and a copy of
the reference data, so ``dispatch --db TARGET dashboard …`` works on it.

A target must be empty of projections (a rebuild never mixes with earlier rows);
the default is a new SQLite file ``replay-<timestamp>.db`` in the working directory;
``scratch()`` makes a temporary one that is removed afterwards (``--verify``).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, func, inspect, select

from dispatch.config import Database, resolve_db
from dispatch.errors import DispatchError
from dispatch.projections import create_tables
from dispatch.projections.tables import METADATA
from dispatch.reference import Reference
from dispatch.store import create_read_engine, store_reference

__all__ = ["Target", "default_target", "open_target", "scratch"]


@dataclass
class Target:
    db: Database
    engine: Engine

    @property
    def display(self) -> str:
        return self.db.url.database if self.db.is_sqlite and self.db.url.database else self.db.display

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


def _nonempty(engine: Engine) -> list[str]:
    existing = set(inspect(engine).get_table_names())
    busy = []
    with engine.connect() as conn:
        for table in METADATA.sorted_tables:
            if table.name in existing and conn.execute(select(func.count()).select_from(table)).scalar():
                busy.append(table.name)
    return busy


def open_target(url: str, reference: Reference, *, source: str, live: Database | None = None) -> Target:
    """Open ``url`` as a rebuild target: refuse the live database or one with projections,
    create the projection tables, copy the reference data."""
    db = resolve_db(url)
    if live is not None and db.url.render_as_string(hide_password=False) == live.url.render_as_string(hide_password=False):
        raise DispatchError("the rebuild target is the live database: give another one with --into")
    engine = create_read_engine(db)
    try:
        busy = _nonempty(engine)
        if busy:
            raise DispatchError(f"{db.display} already holds projections ({', '.join(busy)}): "
                                "give a fresh database with --into")
        create_tables(engine)
        store_reference(engine, source, reference.to_dict())
    except BaseException:
        engine.dispose()
        raise
    return Target(db, engine)


@contextmanager
def scratch(reference: Reference, *, source: str) -> Iterator[Target]:
    """A temporary SQLite target, removed afterwards."""
    folder = tempfile.mkdtemp(prefix="dispatch-verify-")
    target = open_target(str(Path(folder) / "scratch.db"), reference, source=source)
    try:
        yield target
    finally:
        target.close()
        shutil.rmtree(folder, ignore_errors=True)
