"""The loop every database-positioned consumer shares (engine, projector).

The consumer subscribes in a group, but never trusts Kafka's committed offsets
(``enable_auto_commit=False``): on start and on every assignment a
``ConsumerRebalanceListener`` seeks each partition to the position stored in the
database + 1 (or the beginning). Each poll yields at most one ``process(tp, records)``
call per partition; ``process`` records its position in the transaction of its work,
or raises ``Rewind`` to go back to the stored position.

It never sits on an empty assignment: a member that has had no partition for ``EMPTY_AFTER``
seconds says so (a warning, and ``/readyz``: "no partitions for N s") and rejoins its group, at
growing intervals (a group with more members than partitions leaves some members idle; they
then rejoin ever more rarely, up to every half hour). While idle it checks every few seconds that
the broker and the database still answer, so an outage is logged ("… unavailable", "available
again") even when no message comes.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from typing import Any

import psycopg
import sqlalchemy.exc
import structlog

from dispatch.adapters.logs import get_logger
from eventsourcing.persistence import InterfaceError, OperationalError
from kafka import ConsumerRebalanceListener, TopicPartition
from kafka.errors import KafkaError

from consumers.metrics import Availability, ProcessHealth
from dispatch.adapters.kafka import KafkaSettings, make_consumer
from dispatch.adapters.kafka.clients import broker_answers
from dispatch.domain.errors import DatabaseUnavailable

__all__ = ["EMPTY_AFTER", "TRANSIENT", "PartitionedConsumer", "Rewind"]

log = get_logger("dispatch.consumers")

# Errors that say "a server is unreachable now", not "this message is bad".
TRANSIENT: tuple[type[BaseException], ...] = (
    OperationalError, InterfaceError, KafkaError, psycopg.OperationalError, sqlalchemy.exc.OperationalError,
    DatabaseUnavailable,
)
EMPTY_AFTER = 15.0  # seconds without a partition before a member says so and rejoins
PROBE_EVERY = 5.0  # seconds between checks that the broker and database answer, while no message comes


class Rewind(Exception):
    """Abandon this partition's batch; continue from the position stored in the database."""


class _Listener(ConsumerRebalanceListener):
    def __init__(self, owner: PartitionedConsumer):
        self.owner = owner

    def on_partitions_revoked(self, revoked: Any) -> None:
        for tp in revoked:
            self.owner.owned.pop(tp, None)
        if revoked:
            log.info("partitions revoked", **self._said(revoked))

    def on_partitions_assigned(self, assigned: Any) -> None:
        for tp in assigned:
            self.owner.seek_stored(tp)
        log.info("partitions assigned", **self._said(assigned),
                 positions={tp.partition: self.owner.owned.get(tp) for tp in assigned if tp.topic == self.owner.topic})

    def _said(self, tps: Any) -> dict[str, Any]:
        """The main topic's partitions, and the other topics' (the departments' doors) apart."""
        others = sorted(f"{tp.topic}:{tp.partition}" for tp in tps if tp.topic != self.owner.topic)
        return {"partitions": sorted(tp.partition for tp in tps if tp.topic == self.owner.topic),
                **({"also": others} if others else {})}


class PartitionedConsumer(ABC):
    def __init__(self, settings: KafkaSettings, topic: str, group: str, *,
                 max_poll_records: int = 2000, poll_timeout_ms: int = 500, health: ProcessHealth | None = None,
                 also: tuple[str, ...] = (), **consumer_config: Any):
        self.settings, self.topic, self.group = settings, topic, group
        self.health = health
        self.availability = Availability(health, group)
        self.poll_timeout_ms, self.max_poll_records = poll_timeout_ms, max_poll_records
        self.owned: dict[TopicPartition, int | None] = {}  # partition -> last stored offset
        self.consumer = make_consumer(settings, group, max_poll_records=max_poll_records, **consumer_config)
        self.topics = [topic, *also]
        self.consumer.subscribe(self.topics, listener=_Listener(self))
        self._backoff = 0.5
        self._empty_since: float | None = time.monotonic()
        self._rejoin_every = EMPTY_AFTER
        self._next_rejoin = time.monotonic() + EMPTY_AFTER
        self._quiet_since = time.monotonic()
        self._next_probe = time.monotonic() + PROBE_EVERY

    @abstractmethod
    def stored_position(self, tp: TopicPartition) -> int | None:
        """The last offset whose work is in the database, or None."""

    @abstractmethod
    def process(self, tp: TopicPartition, records: list[Any]) -> None:
        """Do the work of ``records`` and store ``records[-1].offset`` in one transaction."""

    @staticmethod
    def source(tp: TopicPartition) -> str:
        return f"{tp.topic}:{tp.partition}"

    def seek_stored(self, tp: TopicPartition) -> None:
        stored = self.stored_position(tp)
        self.owned[tp] = stored
        if stored is None:
            self.consumer.seek_to_beginning(tp)
        else:
            self.consumer.seek(tp, stored + 1)

    def owns(self, tp: TopicPartition, expected: int | None) -> bool:
        """Still assigned, and nothing moved the stored position under us."""
        return tp in self.consumer.assignment() and tp in self.owned and self.owned[tp] == expected

    def lag(self, tp: TopicPartition) -> int | None:
        highwater = self.consumer.highwater(tp)
        stored = self.owned.get(tp)
        return None if highwater is None else highwater - (-1 if stored is None else stored) - 1

    def poll_once(self) -> int:
        """One poll; returns the number of records handed to ``process``."""
        batches = self.consumer.poll(timeout_ms=self.poll_timeout_ms, max_records=self.max_poll_records)
        handled = 0
        for tp, records in batches.items():
            if tp not in self.owned or not records:
                continue
            try:
                self.process(tp, records)
            except Rewind as why:
                log.info("rewind", partition=tp.partition, reason=str(why))
                self.seek_stored(tp)
            handled += len(records)
        return handled

    def probe_database(self) -> None:
        """Raise a ``TRANSIENT`` error if the database does not answer (a subclass with one says how)."""

    def step(self) -> int:
        """``poll_once``, surviving an unreachable database or broker (back off, rewind)."""
        try:
            handled = self.poll_once()
            self._watch_assignment()
            if handled:
                self._quiet_since = time.monotonic()
            elif time.monotonic() >= self._next_probe:  # nothing came: do the servers still answer?
                self._next_probe = time.monotonic() + PROBE_EVERY
                if not broker_answers(self.settings):
                    from kafka.errors import KafkaConnectionError

                    raise KafkaConnectionError(f"no broker of {self.settings.bootstrap} accepts a connection")
                self.probe_database()
        except TRANSIENT as error:
            self.availability.failed(error, self._backoff)
            time.sleep(self._backoff)
            self._backoff = min(self._backoff * 2, 10.0)
            try:
                for tp in list(self.owned):
                    self.seek_stored(tp)
            except TRANSIENT:
                pass
            return 0
        finally:
            structlog.contextvars.clear_contextvars()
        self._backoff = 0.5
        self.availability.succeeded()
        if self.health is not None:
            for tp in list(self.owned):
                self.health.set_lag(tp.topic, tp.partition, self.lag(tp))
        return handled

    def _watch_assignment(self) -> None:
        """No partition for a while: say so, and rejoin the group (at growing intervals)."""
        now = time.monotonic()
        if self.consumer.assignment():
            if self._empty_since is not None and now - self._empty_since >= EMPTY_AFTER:
                log.info("partitions assigned again", group=self.group, after_s=round(now - self._empty_since, 1))
            self._empty_since, self._rejoin_every = None, EMPTY_AFTER
            if self.health is not None:
                self.health.down.pop("partitions", None)
            return
        if self._empty_since is None:
            self._empty_since, self._next_rejoin = now, now + EMPTY_AFTER
            return
        empty = now - self._empty_since
        if self.health is not None and empty >= EMPTY_AFTER:
            self.health.down["partitions"] = f"no partitions for {empty:.0f} s"
        if now >= self._next_rejoin:
            self._rejoin_every = min(self._rejoin_every * 2, 1800.0)
            self._next_rejoin = now + self._rejoin_every
            log.warning("no partitions assigned; rejoining the group", group=self.group, topics=len(self.topics),
                        empty_s=round(empty, 1), next_rejoin_s=round(self._rejoin_every))
            self.consumer.unsubscribe()
            self.consumer.subscribe(self.topics, listener=_Listener(self))

    def run(self, stop_event: threading.Event) -> None:
        while not stop_event.is_set():
            self.step()

    def caught_up(self) -> bool:
        if not self.owned or self.consumer.assignment() != set(self.owned):
            return False
        ends = self.consumer.end_offsets(list(self.owned))
        return all(self.consumer.position(tp) >= ends[tp] for tp in self.owned)

    def run_until_idle(self, *, timeout: float = 300.0, idle_polls: int = 2) -> None:
        """Run until every assigned partition is consumed to its end (for tests, benchmarks)."""
        deadline, idle = time.monotonic() + timeout, 0
        while time.monotonic() < deadline:
            handled = self.step()
            idle = idle + 1 if handled == 0 and self.caught_up() else 0
            if idle >= idle_polls:
                return
        raise TimeoutError(f"{self.topic} not consumed to its end within {timeout}s")

    def close(self) -> None:
        self.consumer.close()
