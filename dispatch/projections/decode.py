"""Stored events → ``EventRecord`` without building domain event objects.

eventsourcing's ``Mapper.to_domain_event`` resolves the topic, decodes the JSON, runs
the class's upcasters and builds an event object per event; the projections only need
the state. ``StoredEventDecoder`` does the same steps with less per-event work and gives
the same records (``tests/unit/test_decode.py`` checks it against the mapper):

- the JSON is decoded once with ``orjson`` (C; bytes taken as they are) and the result
  walked once to revive eventsourcing's standard transcodings (``datetime_iso``,
  ``uuid_hex``, ``decimal_str``) exactly as its ``JSONTranscoder``'s ``object_hook`` does,
  innermost objects first; what orjson refuses and ``json`` accepts (NaN) or may give otherwise (an integer
  beyond 64 bits, which orjson turns into a float) is decoded by ``json`` with that hook, so the result never differs;
- an older ``class_version`` runs the upcasting steps after it in order
  (``dispatch.domain.upcasting``, the functions the classes' ``upcast_vN_vN+1`` methods call): the topic's
  class is never imported, so a read of one ticket (``ticket_records``, for ``dispatch show``) needs
  neither eventsourcing nor the Ticket aggregate;
- ticket ids are turned into ``UUID`` objects once per ticket (a bounded cache).

``for_mapper(mapper)`` gives a decoder only for a mapper this reproduces (JSON transcoder
with the standard transcodings, no cipher, no compressor); otherwise None, and callers
use the mapper.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

import orjson
from sqlalchemy import text
from sqlalchemy.engine import Engine

from dispatch.domain.upcasting import CURRENT_VERSIONS, upcast_from
from dispatch.projections.records import EventRecord

if TYPE_CHECKING:
    from eventsourcing.persistence import Mapper, Notification

_SKIP = frozenset({"originator_id", "originator_version", "timestamp", "originator_topic"})

__all__ = ["StoredEventDecoder", "decode_state", "for_mapper", "paused_gc", "records_from_notifications",
           "records_via_mapper", "ticket_records"]

_MAX_IDS = 20_000  # ticket ids kept as UUID objects between pages (about the open tickets)


def _revive(d: dict[str, Any], _len: Callable[[Any], int] = len, _iso: Any = datetime.fromisoformat) -> Any:
    if _len(d) == 2 and "_type_" in d and "_data_" in d:
        kind = d["_type_"]
        if kind == "datetime_iso":
            return _iso(d["_data_"])
        if kind == "uuid_hex":
            return UUID(d["_data_"])
        if kind == "decimal_str":
            return Decimal(d["_data_"])
        from eventsourcing.persistence import TranscodingNotRegisteredError

        raise TranscodingNotRegisteredError(f"Data serialized with name '{kind}' is not deserializable. "
                                            "Please register a custom transcoding for this type.")
    return d


class _Redo(Exception):
    """A float that may be an integer beyond 64 bits (orjson gives those as floats, json as int)."""


_BIG = 2.0 ** 63


def _walk(d: dict[str, Any]) -> Any:
    """``_revive`` on every object of an ``orjson`` result, innermost first (as an object_hook)."""
    for key, value in d.items():
        kind = type(value)
        if kind is dict:
            d[key] = _walk(value)
        elif kind is list:
            d[key] = _walk_list(value)
        elif kind is float and not -_BIG < value < _BIG:
            raise _Redo
    if len(d) == 2 and "_type_" in d and "_data_" in d:
        return _revive(d)
    return d


def _walk_list(items: list[Any]) -> list[Any]:
    for i, value in enumerate(items):
        kind = type(value)
        if kind is dict:
            items[i] = _walk(value)
        elif kind is list:
            items[i] = _walk_list(value)
        elif kind is float and not -_BIG < value < _BIG:
            raise _Redo
    return items


def decode_state(state: bytes | memoryview | str,
                 _fallback: Callable[[str], Any] = json.JSONDecoder(object_hook=_revive).decode) -> Any:
    """A stored event's state as the ``JSONTranscoder`` decodes it (see the module docstring)."""
    try:
        data = orjson.loads(state)
        return _walk(data) if type(data) is dict else data
    except (orjson.JSONDecodeError, _Redo):
        return _fallback(state if isinstance(state, str) else str(state, "utf8"))


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection while a page is built: the thousands of dicts a page
    creates (none of them in a cycle) otherwise set off collections that scan every live
    object again and again — half the time of a decode. Reference counting still frees
    everything; the collector is switched back on only if it was on."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _Topic:
    __slots__ = ("type", "version")

    def __init__(self, topic: str):
        self.type = topic.rsplit(".", 1)[-1]
        self.version: int = CURRENT_VERSIONS.get(self.type, 1)


class StoredEventDecoder:
    """``decoder.record(id, originator_id, originator_version, topic, state)`` → ``EventRecord``."""

    def __init__(self) -> None:
        self._topics: dict[str, _Topic] = {}
        self._ids: dict[Any, UUID] = {}

    def ticket_id(self, originator_id: Any) -> UUID:
        uid = self._ids.get(originator_id)
        if uid is None:
            if len(self._ids) >= _MAX_IDS:
                self._ids.clear()
            uid = self._ids[originator_id] = UUID(str(originator_id))
        return uid

    def record(self, position: int, originator_id: Any, version: int, topic: str, state: bytes | memoryview | str) -> EventRecord:
        info = self._topics.get(topic)
        if info is None:
            info = self._topics[topic] = _Topic(topic)
        data: dict[str, Any] = decode_state(state)
        ticket_id = self.ticket_id(originator_id)
        stored_version = data.pop("class_version", 1)
        if stored_version < info.version:
            upcast_from(info.type, data, stored_version)
        data.pop("timestamp", None)
        data.pop("originator_topic", None)
        return EventRecord(position, ticket_id, version, info.type, data)

    def records(self, rows: Iterable[tuple[int, Any, int, str, bytes | str]]) -> list[EventRecord]:
        record = self.record
        with paused_gc():
            return [record(*row) for row in rows]


def ticket_records(engine: Engine, table: str, ticket_id: UUID) -> list[EventRecord]:
    """One ticket's stored events, decoded, in version order, read straight from the event store's
    ``table`` in ``engine``'s database (``Runtime.store_table``, when ``Runtime.plain_store``):
    eventsourcing's own columns, one indexed query. Empty when there is no such ticket."""
    sqlite = engine.dialect.name == "sqlite"
    statement = text(f"SELECT {'rowid' if sqlite else 'notification_id'}, originator_version, topic, state "
                     f"FROM {table} WHERE originator_id = :id ORDER BY originator_version")
    with engine.connect() as conn:
        rows = conn.execute(statement, {"id": ticket_id.hex if sqlite else ticket_id}).all()
    decoder = StoredEventDecoder()
    return [decoder.record(position, ticket_id, version, topic, state) for position, version, topic, state in rows]


def for_mapper(mapper: Mapper[Any]) -> StoredEventDecoder | None:
    """A decoder that gives what ``mapper`` gives, or None when the mapper does more (a cipher,
    a compressor, custom transcodings)."""
    from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, JSONTranscoder, UUIDAsHex

    standard = {"datetime_iso": DatetimeAsISO, "uuid_hex": UUIDAsHex, "decimal_str": DecimalAsStr}
    transcoder = mapper.transcoder
    if mapper.cipher is not None or mapper.compressor is not None or type(transcoder) is not JSONTranscoder:
        return None
    names = getattr(transcoder, "names", None)
    if not isinstance(names, dict) or any(type(t) is not standard.get(n) for n, t in names.items()):
        return None
    return StoredEventDecoder()


def records_from_notifications(notifications: Iterable[Notification], mapper: Mapper[Any]) -> list[EventRecord]:
    """Decode notifications as ``mapper`` would (``dispatch.projections.decode`` when it can)."""
    decoder = for_mapper(mapper)
    if decoder is not None:
        return decoder.records((n.id, n.originator_id, n.originator_version, n.topic, n.state) for n in notifications)
    return records_via_mapper(notifications, mapper)


def records_via_mapper(notifications: Iterable[Notification], mapper: Mapper[Any]) -> list[EventRecord]:
    """Through eventsourcing's ``Mapper.to_domain_event``: the reference decoding."""
    records = []
    for n in notifications:
        event = mapper.to_domain_event(n)
        state = vars(event)
        data = {k: v for k, v in state.items() if k not in _SKIP}
        records.append(
            EventRecord(
                position=n.id,
                ticket_id=UUID(str(n.originator_id)),
                version=n.originator_version,
                type=n.topic.rsplit(".", 1)[-1],
                data=data,
            )
        )
    return records
