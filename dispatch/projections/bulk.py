"""Bulk-load mode for a rebuild into a FRESH target database (never the live one).

``bulk_load(engine)`` gives the one connection a rebuild writes every page on. When the
projection tables are empty (a rebuild target: ``dispatch.service.replay.open_target`` refuses
anything else), for the length of the load:

- the secondary indexes are dropped and built again at the end, in one sorted pass each,
  instead of being updated row by row (a batch reads and updates by primary key only);
- SQLite: ``journal_mode=MEMORY``, ``synchronous=OFF`` and a 32 MB page cache on that
  connection (the engine's idle pooled connections are closed first: leaving WAL needs
  the file to itself). Pages are written once, straight into the file, without fsyncs:
  a power cut during the load can corrupt the file — acceptable only because the target
  is scratch until the rebuild finishes (it is rebuilt from scratch, never resumed). The
  live database keeps WAL and ``synchronous=NORMAL`` (``dispatch.adapters.database``); this is never
  applied to it. At the end WAL, NORMAL and the cache size are set back, so the finished
  file is durable and opens like any other.
- PostgreSQL: ``synchronous_commit=off`` for the session (a crash may lose the last pages'
  commits, never corrupts), reset at the end (``bulk_session``: a rebuild's worker processes
  take the same on their connections). And the tables are analysed once the first page is in
  (``analyse_early``): without statistics the planner takes ``closed_out_at IS NULL AND answer
  IS NULL …`` to match one row in the whole table and joins a page's updates of calls
  (``… FROM (VALUES …)``) to it by reading all of calls — every page, 16 s of a 1 M-event
  rebuild's 54 s of writing. With the first page's statistics (scaled by the table's size as
  it grows) each update goes by primary key.

A non-empty target gets none of this: the same connection, the usual settings.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, exists, select

from dispatch.projections import tables as t

__all__ = ["analyse_early", "bulk_load", "bulk_session"]

_SQLITE_CACHE_KIB = 32_768


def bulk_session(conn: Connection) -> None:
    """PostgreSQL: the bulk-load settings (see above) for this session."""
    conn.exec_driver_sql("SET synchronous_commit = off")


def analyse_early(conn: Connection) -> None:
    """PostgreSQL: statistics for the tables being loaded, taken after their first page (see
    above); outside a transaction of the load's."""
    if conn.dialect.name == "postgresql":
        q = conn.dialect.identifier_preparer
        conn.exec_driver_sql(f"ANALYZE {', '.join(q.format_table(table) for table in t.METADATA.sorted_tables)}")
        conn.commit()


def _empty(conn: Connection) -> bool:
    return not any(conn.execute(select(exists().select_from(table))).scalar()
                   for table in t.METADATA.sorted_tables)


@contextmanager
def bulk_load(engine: Engine, *, indexes: bool = True) -> Iterator[Connection]:
    """(See the module docstring.) ``indexes=False``: the secondary indexes are dropped and not
    built again — a scratch read model whose few questions read nearly all its rows (a what-if's:
    its tickets are the period's) answers as fast without them, and building them cost a what-if
    of a quarter at 100 k tickets ~3 s of its ~25."""
    t.ensure_tables(engine)
    sqlite = engine.dialect.name == "sqlite"
    if sqlite and engine.url.database not in (None, "", ":memory:"):
        engine.dispose()  # only our idle connections: a rebuild target has no other user
    with engine.connect() as conn:
        fresh = _empty(conn)
        conn.commit()
        if not fresh:
            yield conn
            return
        dropped = [ix for table in t.METADATA.sorted_tables for ix in table.indexes]
        if sqlite:
            cache = conn.exec_driver_sql("PRAGMA cache_size").scalar()
            journal = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
            # scratch target only: see the module docstring
            switched = conn.exec_driver_sql("PRAGMA journal_mode=MEMORY").scalar() != journal
            conn.exec_driver_sql("PRAGMA synchronous=OFF")
            conn.exec_driver_sql(f"PRAGMA cache_size=-{_SQLITE_CACHE_KIB}")
        else:
            bulk_session(conn)
        for ix in dropped:
            ix.drop(conn, checkfirst=True)
        conn.commit()
        try:
            yield conn
        finally:
            if conn.in_transaction():
                conn.rollback()
            for ix in dropped if indexes else ():
                ix.create(conn, checkfirst=True)
            conn.commit()
            if sqlite:
                if switched:
                    conn.exec_driver_sql(f"PRAGMA journal_mode={journal}")
                conn.exec_driver_sql("PRAGMA synchronous=NORMAL")
                conn.exec_driver_sql(f"PRAGMA cache_size={int(cache or -2000)}")
            else:
                conn.exec_driver_sql("RESET synchronous_commit")
            conn.commit()
