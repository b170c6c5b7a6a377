"""Event stores of a given size for the rebuild and memory benchmarks, built once and cached.

A store is filled through the real handlers and aggregates (``fill_store``) into SQLite and
cached under ``~/.cache/dispatch/bench`` keyed by the size and a hash of the code that shapes
events. A PostgreSQL copy is made by creating the application's tables (``bootstrap``) and
COPYing the same stored rows (same mapper, same JSON state bytes), then kept as a template
database, so each benchmark gets a fresh ``CREATE DATABASE … TEMPLATE …`` copy in seconds.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import sys
from pathlib import Path

import psycopg
from psycopg import sql

from bench.common import PG_BASE, REPO, fill_store, fresh_pg
from dispatch.bootstrap import bootstrap

__all__ = ["pg_store", "sqlite_store"]

CACHE = Path.home() / ".cache" / "dispatch" / "bench"
_SHAPERS = ("dispatch/aggregates/ticket.py", "dispatch/domain/upcasting.py", "dispatch/service/simulation/story.py",
            "dispatch/service/simulation/generator.py", "dispatch/service/simulation/profile.py", "dispatch/data/sample.yaml")


def _key(events: int) -> str:
    digest = hashlib.sha256()
    for name in _SHAPERS:
        path = REPO / name
        if path.exists():
            digest.update(path.read_bytes())
    return f"{events}-{digest.hexdigest()[:12]}"


def sqlite_store(events: int, into: Path) -> Path:
    """A SQLite event store with ``events`` events (no projections) at ``into``."""
    CACHE.mkdir(parents=True, exist_ok=True)
    cached = CACHE / f"store-{_key(events)}.db"
    if not cached.exists():
        print(f"  building a {events}-event store (cached as {cached.name})", file=sys.stderr)
        partial = cached.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        runtime = bootstrap(str(partial))
        try:
            fill_store(runtime, events)
        finally:
            runtime.close()
        with sqlite3.connect(partial) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        partial.rename(cached)
    shutil.copyfile(cached, into)
    return into


def _pg_dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def pg_store(events: int, work: Path) -> str:
    """A fresh PostgreSQL database holding the same ``events`` events; returns its URL."""
    template = f"bench_store_{_key(events).replace('-', '_')}"
    admin = PG_BASE.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(_pg_dsn(admin), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (template,)).fetchone()
    if not exists:
        _build_pg_template(events, work, admin, template)
    target = fresh_pg("bench_rebuild")
    name = target.rsplit("/", 1)[1]
    with psycopg.connect(_pg_dsn(admin), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template)))
    return target


def _build_pg_template(events: int, work: Path, admin: str, template: str) -> None:
    source = sqlite_store(events, work / "pg-source.db")
    url = admin.rsplit("/", 1)[0] + "/" + template
    with psycopg.connect(_pg_dsn(admin), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(template)))
    bootstrap(url).close()  # the application's tables and the reference data
    print(f"  copying {events} events to PostgreSQL template {template}", file=sys.stderr)
    with sqlite3.connect(source) as lite, psycopg.connect(_pg_dsn(url)) as pg:
        with pg.cursor() as cur:
            with cur.copy("COPY dispatch_events (notification_id, originator_id, originator_version, topic, state) "
                          "FROM STDIN") as copy:
                for row in lite.execute("SELECT rowid, originator_id, originator_version, topic, state "
                                        "FROM stored_events ORDER BY rowid"):
                    copy.write_row(row)
            with cur.copy("COPY dispatch_snapshots (originator_id, originator_version, topic, state) FROM STDIN") as copy:
                for row in lite.execute("SELECT originator_id, originator_version, topic, state FROM stored_snapshots"):
                    copy.write_row(row)
            cur.execute("SELECT setval('dispatch_events_notification_id_seq', (SELECT max(notification_id) "
                        "FROM dispatch_events))")
        pg.commit()
    with psycopg.connect(_pg_dsn(url), autocommit=True) as pg:
        pg.execute("VACUUM ANALYZE")
    source.unlink()
