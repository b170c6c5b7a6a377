"""Read the event store's notification log as ``EventRecord`` pages, straight from the driver.

``recorder.select_notifications`` builds a ``Notification`` per row (and, on SQLite, a UUID
and a ``sqlite3.Row``) only for the mapper to take it apart again. ``StoreReader.page``
runs the same query — the same rows in the same order, ``start <= id <= stop``, at most
``limit`` — on the recorder's own connection and hands the plain tuples to
``StoredEventDecoder``. Recorders other than eventsourcing's SQLite and PostgreSQL ones,
and mappers the decoder does not reproduce, go through ``select_notifications`` and
``records_from_notifications`` as before.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder

from dispatch.projections.decode import for_mapper
from dispatch.projections.records import EventRecord, records_from_notifications

__all__ = ["StoreReader"]


class StoreReader:
    """``reader.page(start, limit, stop=None) -> (records, last id read, rows read)``."""

    def __init__(self, app: Any):
        self.app = app
        self.recorder = app.recorder
        self.decoder = for_mapper(app.mapper)
        self._kind = None
        if self.decoder is not None:
            if isinstance(self.recorder, SQLiteApplicationRecorder):
                self._kind = "sqlite"
            elif isinstance(self.recorder, PostgresApplicationRecorder):
                self._kind = "postgres"

    def page(self, start: int, limit: int, stop: int | None = None) -> tuple[list[EventRecord], int, int]:
        if self._kind == "sqlite":
            rows = self._sqlite(start, limit, stop)
        elif self._kind == "postgres":
            rows = self._postgres(start, limit, stop)
        else:
            notifications = self.recorder.select_notifications(start, limit, stop=stop)
            if not notifications:
                return [], start - 1, 0
            records = records_from_notifications(notifications, self.app.mapper)
            return records, notifications[-1].id, len(notifications)
        if not rows:
            return [], start - 1, 0
        assert self.decoder is not None
        return self.decoder.records(rows), rows[-1][0], len(rows)

    def _sqlite(self, start: int, limit: int, stop: int | None) -> list[Any]:
        r = self.recorder
        sql = (f"SELECT rowid, originator_id, originator_version, topic, state FROM {r.events_table_name} "
               f"WHERE rowid>=? {'AND rowid<=? ' if stop is not None else ''}ORDER BY rowid LIMIT ?")
        params = (start, stop, limit) if stop is not None else (start, limit)
        with r.datastore.transaction(commit=False) as c:
            cursor = c.sqlite_cursor
            cursor.row_factory = None  # plain tuples (the connection's factory is sqlite3.Row)
            cursor.execute(sql, params)
            return cursor.fetchall()

    def _postgres(self, start: int, limit: int, stop: int | None) -> list[Any]:
        from psycopg import sql
        from psycopg.rows import tuple_row

        r = self.recorder
        query = sql.SQL("SELECT notification_id, originator_id::text, originator_version, topic, state "
                        "FROM {schema}.{table} WHERE notification_id>=%s {stop}ORDER BY notification_id LIMIT %s").format(
            schema=sql.Identifier(r.datastore.schema), table=sql.Identifier(r.events_table_name),
            stop=sql.SQL("AND notification_id<=%s " if stop is not None else ""))
        params = (start, stop, limit) if stop is not None else (start, limit)
        with r.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cursor:
            cursor.execute(query, params, prepare=True)
            return cursor.fetchall()
