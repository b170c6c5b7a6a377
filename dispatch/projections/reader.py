"""Read the event store's notification log as ``EventRecord`` pages, straight from the driver.

``recorder.select_notifications`` builds a ``Notification`` per row (and, on SQLite, a UUID
and a ``sqlite3.Row``) only for the mapper to take it apart again. ``StoreReader.page``
runs the same query — the same rows in the same order, ``start <= id <= stop``, at most
``limit`` — on the recorder's own connection (``dispatch.adapters.eventstore.notification_rows``) and hands the plain tuples to
``StoredEventDecoder``. Recorders other than eventsourcing's SQLite and PostgreSQL ones,
and mappers the decoder does not reproduce, go through ``select_notifications`` and
``records_from_notifications`` as before.
"""

from __future__ import annotations

from typing import Any

from dispatch.adapters.eventstore import notification_rows
from dispatch.projections.decode import for_mapper
from dispatch.projections.decode import records_from_notifications
from dispatch.projections.records import EventRecord

__all__ = ["StoreReader"]


class StoreReader:
    """``reader.page(start, limit, stop=None) -> (records, last id read, rows read)``."""

    def __init__(self, app: Any):
        self.app = app
        self.recorder = app.recorder
        self.decoder = for_mapper(app.mapper)

    def page(self, start: int, limit: int, stop: int | None = None) -> tuple[list[EventRecord], int, int]:
        rows = notification_rows(self.recorder, start, limit, stop) if self.decoder is not None else None
        if rows is None:
            notifications = self.recorder.select_notifications(start, limit, stop=stop)
            if not notifications:
                return [], start - 1, 0
            records = records_from_notifications(notifications, self.app.mapper)
            return records, notifications[-1].id, len(notifications)
        if not rows:
            return [], start - 1, 0
        assert self.decoder is not None
        return self.decoder.records(rows), rows[-1][0], len(rows)
