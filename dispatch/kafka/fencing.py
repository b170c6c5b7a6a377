"""Compare-and-set tracking: a batch's position is recorded only if the stored one is
the position the batch started after.

eventsourcing's own tracking insert refuses a position that is not *greater* than the
stored one. That stops a replay of the same batch, but not two processes that both
started a partition from the same stored position and stopped at different offsets (a
consumer evicted from its group while it was still working on a batch, and the new
owner): the larger one would be accepted and the commands in the overlap applied twice.
``FencedTracking(name, last_offset, expected)`` makes the insert conditional on
``expected`` (``None``: nothing stored yet) in the same transaction as the events; the
loser's whole transaction rolls back with ``IntegrityError`` (``ConcurrentChange`` from
``DispatchApp.record``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import IntegrityError, Tracking

__all__ = ["FencedTracking", "FencedTrackings", "install_fence"]


@dataclass(frozen=True)
class FencedTracking(Tracking):
    expected: int | None = None  # the stored position this batch continues from


@dataclass(frozen=True)
class FencedTrackings(Tracking):
    """Several partitions' positions in ONE transaction (eventsourcing's ``ProcessingEvent``
    carries one ``Tracking``): every part is written with its own compare-and-set, and if
    any part fails, the whole transaction (events and every position) rolls back."""

    parts: tuple[FencedTracking, ...] = ()

    @classmethod
    def of(cls, parts: list[FencedTracking]) -> FencedTrackings:
        if not parts:
            raise ValueError("no positions to record")
        return cls(parts[0].application_name, parts[0].notification_id, tuple(parts))


def install_fence(recorder: Any) -> None:
    """Teach an eventsourcing (PostgreSQL or SQLite) process recorder ``FencedTracking``."""
    if getattr(recorder, "_dispatch_fenced", False):
        return
    original = recorder._insert_tracking
    if hasattr(recorder, "tracking_table_name"):  # PostgreSQL
        table = f'"{recorder.datastore.schema}"."{recorder.tracking_table_name}"'
        insert = f"INSERT INTO {table} VALUES (%(name)s, %(new)s) ON CONFLICT DO NOTHING RETURNING notification_id"
        update = (f"UPDATE {table} SET notification_id = %(new)s "
                  "WHERE application_name = %(name)s AND notification_id = %(expected)s RETURNING notification_id")
    else:  # SQLite
        insert = "INSERT INTO tracking VALUES (:name, :new) ON CONFLICT DO NOTHING RETURNING notification_id"
        update = ("UPDATE tracking SET notification_id = :new "
                  "WHERE application_name = :name AND notification_id = :expected RETURNING notification_id")

    def insert_tracking(curs: Any, tracking: Tracking) -> None:
        if isinstance(tracking, FencedTrackings):
            for part in tracking.parts:
                insert_tracking(curs, part)
            return
        if not isinstance(tracking, FencedTracking):
            original(curs, tracking)
            return
        params = {"name": tracking.application_name, "new": tracking.notification_id, "expected": tracking.expected}
        curs.execute(insert if tracking.expected is None else update, params)
        if curs.fetchone() is None:
            raise IntegrityError(
                f"{tracking.application_name}: stored position is not {tracking.expected}; "
                "another consumer recorded this partition meanwhile"
            )

    recorder._insert_tracking = insert_tracking
    recorder._dispatch_fenced = True
