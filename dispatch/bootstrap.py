"""One ``bootstrap()`` per process: database, reference data, application, clock.
Nothing connects at import time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, text

from dispatch.application import DispatchApp
from dispatch.clock import Clock, SystemClock
from dispatch.config import Database, resolve_db
from dispatch.reference import Reference, load_reference, reference_from_dict
from dispatch.store import create_read_engine, load_stored_reference, store_reference

__all__ = ["Runtime", "bootstrap"]


@dataclass
class Runtime:
    db: Database
    engine: Engine
    reference: Reference
    app: DispatchApp
    clock: Clock = field(default_factory=SystemClock)

    def close(self) -> None:
        self.app.close()
        self.engine.dispose()


def bootstrap(
    db_url: str | None = None,
    *,
    clock: Clock | None = None,
    reference_file: str | Path | None = None,
    env: dict[str, str] | None = None,
) -> Runtime:
    """Open the database named by ``db_url`` (see ``dispatch.config``).

    The reference data lives in the database, so every process of a deployment
    shares it: ``reference_file`` replaces it; otherwise the stored copy is used,
    and a new database gets the bundled sample.
    """
    db = resolve_db(db_url)
    engine = create_read_engine(db)
    try:
        with _schema_lock(engine):
            reference = _reference(engine, reference_file)
            app = DispatchApp(env=db.eventstore_env() | (env or {}), reference=reference)
    except BaseException:
        engine.dispose()
        raise
    return Runtime(db=db, engine=engine, reference=reference, app=app, clock=clock or SystemClock())


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
        return reference
    stored = load_stored_reference(engine)
    if stored is not None:
        source, body = stored
        return reference_from_dict(body, source=f"stored reference data (from {source})")
    reference = load_reference(None)
    store_reference(engine, "bundled sample", reference.to_dict())
    return reference
