"""What a rebuild worker reads: its share of the event store's rows, straight from the driver.

``share(originator_id, n)`` names the worker of a ticket; the queries compute the same in the
database (SQLite: the text id's last two hex digits; PostgreSQL: the uuid's last byte), so a
worker receives only its own rows. ``store_spec(app)`` says how a worker process opens the
store by itself (never through the parent's connections).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from dispatch.adapters import eventstore
from dispatch.adapters.eventstore import StoreSpec
from dispatch.projections.decode import for_mapper

__all__ = ["StoreSpec", "fetcher", "share", "store_spec"]


def share(originator_id: str, workers: int) -> int:
    """The worker that owns a ticket: its id's last byte (last two hex digits) modulo
    ``workers`` — what the workers' queries compute in the database (``_SQLITE_SHARE``,
    ``_PG_SHARE``), so the other workers' rows never leave it."""
    return int(originator_id[-2:], 16) % workers


_HEX = "'0123456789abcdef'"
_SQLITE_SHARE = (f"((instr({_HEX}, lower(substr(originator_id, -2, 1))) - 1) * 16"
                 f" + instr({_HEX}, lower(substr(originator_id, -1, 1))) - 1) % ? = ?")
_PG_SHARE = "get_byte(uuid_send(originator_id), 15) %% %s = %s"


def store_spec(app: Any) -> StoreSpec | None:
    """The store as a worker can read it, or None (another recorder, an in-memory SQLite
    store, a mapper the fast decoder does not reproduce): rebuild in one process then."""
    if for_mapper(app.mapper) is None:
        return None
    return eventstore.store_spec(app.recorder)


def fetcher(spec: StoreSpec, index: int, workers: int) -> tuple[Callable[[int, int, int], list[Any]],
                                                                   Callable[[], None]]:
    """``fetch(start, limit, stop)`` → this worker's raw rows (id, originator_id text,
    version, topic, state): ``start <= id <= stop``, at most ``limit``, in id order."""
    if spec.kind == "sqlite":
        conn = sqlite3.connect(spec.where, check_same_thread=False)
        sql = (f"SELECT rowid, originator_id, originator_version, topic, state FROM {spec.table} "
               f"WHERE rowid>=? AND rowid<=? AND {_SQLITE_SHARE} ORDER BY rowid LIMIT ?")

        def fetch(start: int, limit: int, stop: int) -> list[Any]:
            return conn.execute(sql, (start, stop, workers, index, limit)).fetchall()
        return fetch, conn.close
    import psycopg
    from psycopg import sql as q

    pg = psycopg.connect(**spec.where, autocommit=True)
    query = q.SQL("SELECT notification_id, originator_id::text, originator_version, topic, state "
                  "FROM {s}.{t} WHERE notification_id>=%s AND notification_id<=%s AND " + _PG_SHARE +
                  " ORDER BY notification_id LIMIT %s").format(s=q.Identifier(spec.schema), t=q.Identifier(spec.table))

    def fetch_pg(start: int, limit: int, stop: int) -> list[Any]:
        with pg.cursor() as cur:
            cur.execute(query, (start, stop, workers, index, limit), prepare=True)
            return cur.fetchall()
    return fetch_pg, pg.close
