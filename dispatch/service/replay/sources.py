"""Where a rebuild reads ticket events: pages of ``EventRecord``, never all at once.

- ``StoreSource``: the event store's notification log in pages (``StoreReader``: the
  recorder's query, decoded without the mapper's event objects) up to the last id at
  the start (events recorded meanwhile wait for the next run).
- ``KafkaSource``: the ticket-events topic from offset 0 up to each partition's end
  offset at the start, decoded with ``record_from_json`` and upcast like stored events.

A page carries the projection source name and position to store with it, the names
the live consumers use (``store``; ``<topic>:<partition>`` with the last offset).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from dispatch.domain.errors import DispatchError
from dispatch.projections import STORE_SOURCE
from dispatch.projections.reader import StoreReader
from dispatch.projections.records import EventRecord, record_from_json

__all__ = ["KafkaSource", "Page", "StoreSource"]

PAGE_SIZE = 10_000


@dataclass
class Page:
    records: list[EventRecord]
    source: str
    position: int
    read: int  # events read (records may hold fewer after a filter)


class StoreSource:
    def __init__(self, app: Any, *, page_size: int = PAGE_SIZE):
        self.app, self.page_size = app, page_size
        self.upto = app.recorder.max_notification_id() or 0
        self.description = "the event store"

    @property
    def total(self) -> int:
        return self.upto

    def pages(self) -> Iterator[Page]:
        reader = StoreReader(self.app)
        position = 0
        while position < self.upto:
            records, position, read = reader.page(position + 1, self.page_size, stop=self.upto)
            if not read:
                break
            yield Page(records, STORE_SOURCE, position, read)


class KafkaSource:
    def __init__(self, bootstrap: str, prefix: str | None = None, *, page_size: int = PAGE_SIZE,
                 idle_timeout: float = 60.0):
        from kafka import TopicPartition

        from dispatch.adapters.kafka import KafkaSettings, make_consumer

        settings = KafkaSettings.from_env(bootstrap, prefix)
        self.topic, self.page_size, self.idle_timeout = settings.topics.ticket_events, page_size, idle_timeout
        self.description = f"Kafka topic {self.topic} at {settings.bootstrap}"
        self.consumer = make_consumer(settings, None, max_poll_records=page_size, consumer_timeout_ms=1000)
        try:
            partitions = self.consumer.partitions_for_topic(self.topic)
            if not partitions:
                raise DispatchError(f"no topic {self.topic} at {settings.bootstrap} (check --topic-prefix)")
            self.partitions = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            self.consumer.assign(self.partitions)
            self.consumer.seek_to_beginning(*self.partitions)
            begin = self.consumer.beginning_offsets(self.partitions)
            self.end: dict[Any, int] = self.consumer.end_offsets(self.partitions)
        except BaseException:
            self.consumer.close()
            raise
        self.total = sum(self.end[tp] - begin[tp] for tp in self.partitions)

    def _done(self) -> bool:
        return all(self.consumer.position(tp) >= self.end[tp] for tp in self.partitions)

    def _flush(self, pending: dict[Any, list[Any]]) -> Iterator[Page]:
        for tp, messages in pending.items():
            if messages:
                records = [record_from_json(m.value) for m in messages]  # upcast as it decodes
                yield Page(records, f"{tp.topic}:{tp.partition}", messages[-1].offset, len(messages))
        pending.clear()

    def pages(self) -> Iterator[Page]:
        pending: dict[Any, list[Any]] = {}
        held, last_progress = 0, time.monotonic()
        try:
            while not self._done():
                batch = self.consumer.poll(timeout_ms=500, max_records=self.page_size)
                if not batch:
                    if time.monotonic() - last_progress > self.idle_timeout:
                        raise DispatchError(f"{self.description}: no messages for {self.idle_timeout:.0f}s "
                                            "before reaching the end offsets")
                    continue
                last_progress = time.monotonic()
                for tp, messages in batch.items():
                    mine = [m for m in messages if m.offset < self.end[tp]]
                    pending.setdefault(tp, []).extend(mine)
                    held += len(mine)
                    if len(mine) < len(messages):
                        self.consumer.pause(tp)  # past the end taken at the start
                if held >= self.page_size:
                    yield from self._flush(pending)
                    held = 0
            yield from self._flush(pending)
        finally:
            self.consumer.close()
