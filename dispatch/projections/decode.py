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
- topic → (event type, class version, upcasters) is resolved once per topic;
- an older ``class_version`` runs the class's ``upcast_vN_vN+1`` steps in order, on the
  state with ``originator_id`` / ``originator_version`` in it, as the mapper does;
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
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (DatetimeAsISO, DecimalAsStr, JSONTranscoder, Mapper, Notification,
                                       TranscodingNotRegisteredError, UUIDAsHex)
from eventsourcing.utils import resolve_topic
import orjson

from dispatch.projections.records import EventRecord

_SKIP = frozenset({"originator_id", "originator_version", "timestamp", "originator_topic"})

__all__ = ["StoredEventDecoder", "decode_state", "for_mapper", "paused_gc", "records_from_notifications",
           "records_via_mapper"]

_STANDARD = {"datetime_iso": DatetimeAsISO, "uuid_hex": UUIDAsHex, "decimal_str": DecimalAsStr}
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
    __slots__ = ("cls", "type", "version")

    def __init__(self, topic: str):
        self.cls = resolve_topic(topic)
        self.type = topic.rsplit(".", 1)[-1]
        self.version: int = getattr(self.cls, "class_version", 1)


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
            self._upcast(info, data, stored_version, ticket_id, version)
        data.pop("timestamp", None)
        data.pop("originator_topic", None)
        return EventRecord(position, ticket_id, version, info.type, data)

    @staticmethod
    def _upcast(info: _Topic, state: dict[str, Any], version: int, ticket_id: UUID, originator_version: int) -> None:
        """The mapper's loop, in place: the steps see the whole event state, ids included."""
        state["originator_id"], state["originator_version"] = ticket_id, originator_version
        while version < info.version:
            getattr(info.cls, f"upcast_v{version}_v{version + 1}")(state)
            version += 1
        state.pop("originator_id", None)
        state.pop("originator_version", None)

    def records(self, rows: Iterable[tuple[int, Any, int, str, bytes | str]]) -> list[EventRecord]:
        record = self.record
        with paused_gc():
            return [record(*row) for row in rows]


def for_mapper(mapper: Mapper[Any]) -> StoredEventDecoder | None:
    """A decoder that gives what ``mapper`` gives, or None when the mapper does more (a cipher,
    a compressor, custom transcodings)."""
    transcoder = mapper.transcoder
    if mapper.cipher is not None or mapper.compressor is not None or type(transcoder) is not JSONTranscoder:
        return None
    names = getattr(transcoder, "names", None)
    if not isinstance(names, dict) or any(type(t) is not _STANDARD.get(n) for n, t in names.items()):
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
