"""``EventRecord``: one stored ticket event as the projections see it.

The same record comes from the event store's notification log (embedded mode,
rebuilds) and from the ticket-events Kafka topic (production), so one projection
code path serves both. Old event versions are upcast on the way in (each event class's
``upcast_vN_vN+1``, as the application's mapper runs them; ``dispatch.projections.decode``
does the mapper's work without building event objects, and ``records_from_notifications``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from dispatch.domain.upcasting import CURRENT_VERSIONS, upcast_data

__all__ = ["DATETIME_FIELDS", "EventRecord", "jsonable", "record_from_json", "record_to_json"]

# Fields that hold business times, wherever they appear in an event's data.
DATETIME_FIELDS = frozenset({"occurred_at", "ack_due", "handle_due", "feedback_due", "answered_at", "dispatched_at",
                             "accept_due", "dispatch_due"})
_TIME_MAPS = frozenset({"dues"})  # a Resumed event's moved deadlines: every value is a time


@dataclass(frozen=True, slots=True)
class EventRecord:
    position: int  # notification id in the event store: the global order
    ticket_id: UUID
    version: int  # the ticket's own sequence number, from 1
    type: str  # "Reported", "Dispatched", …
    data: dict[str, Any]  # the event's fields; business times are aware datetimes

    @property
    def occurred_at(self) -> datetime:
        occurred: datetime = self.data["occurred_at"]
        return occurred


def jsonable(value: Any) -> Any:
    """``json.dumps`` default for business times and ids."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def record_to_json(record: EventRecord) -> bytes:
    """The ticket-events wire format (see schemas/ticket-event.schema.json): the data in its
    current shape, with that shape's class version."""
    body = {
        "ticket_id": str(record.ticket_id),
        "version": record.version,
        "type": record.type,
        "position": record.position,
        "class_version": CURRENT_VERSIONS.get(record.type, 1),
        "data": record.data,
    }
    return json.dumps(body, ensure_ascii=False, default=jsonable, separators=(",", ":")).encode()


def _revive(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        if key in _TIME_MAPS:
            return {k: datetime.fromisoformat(v) if isinstance(v, str) else v for k, v in value.items()}
        return {k: _revive(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_revive(v) for v in value]
    if key in DATETIME_FIELDS and isinstance(value, str):
        return datetime.fromisoformat(value)
    return value


def record_from_json(raw: bytes | str) -> EventRecord:
    """A ticket-events message as a record in the current shape: an older class version (or
    none, as an older relay wrote) is upcast, so every reader of the wire sees one shape."""
    body = json.loads(raw)
    kind = str(body["type"])
    data = _revive(body["data"])
    if body.get("class_version", 1) < CURRENT_VERSIONS.get(kind, 1):
        upcast_data(kind, data)
    return EventRecord(
        position=int(body["position"]),
        ticket_id=UUID(body["ticket_id"]),
        version=int(body["version"]),
        type=kind,
        data=data,
    )
