"""The relay: the event store's notification log → Kafka (``dispatch relay``).

Every new ticket event goes to the ticket-events topic (key: ticket id, value:
``record_to_json``); every call of a Dispatched / Redispatched event, and every
Acknowledged / Rejected / Handled answer, also goes to the whistle topic, keyed by
department, saying where the call now stands on the desk (the relay folds each ticket's
events with ``dispatch.domain.lifecycle.fold`` as they go by). The producer is idempotent (``enable_idempotence``, ``acks=all``).

The relay's position (the last relayed notification id) is a tracking record named
``relay:<ticket-events topic>`` in the event store, written only after the broker has
acknowledged every send of the batch (``flush`` + each future). On PostgreSQL the relay
LISTENs on the channel eventsourcing NOTIFYs in every event transaction, so it wakes as
soon as events commit (``idle_sleep`` only bounds the wait). A crash in between
sends the batch again: at-least-once. Readers drop a redelivered event by
(ticket id, version) — ``apply_records`` does — and a department answering a
redelivered call twice is refused by the engine (same command id). Run one relay per
event store; a second one would only add duplicates.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any, cast
from uuid import UUID

import psycopg
import click
from dispatch.adapters.logs import get_logger
from eventsourcing.persistence import IntegrityError, ProcessRecorder, Tracking

from consumers.base import PROBE_EVERY, TRANSIENT
from consumers.metrics import Availability, ProcessHealth
from consumers.process import process_options, run_process
from dispatch.adapters.eventstore import listen
from dispatch.adapters.kafka import KafkaSettings, ensure_topics, make_producer, whistle_messages
from dispatch.adapters.kafka.clients import broker_answers
from dispatch.bootstrap import Runtime
from dispatch.domain.errors import DispatchError
from dispatch.domain.lifecycle import fold, new_state
from dispatch.projections.decode import records_from_notifications
from dispatch.projections.records import record_to_json

__all__ = ["Relay", "main"]

log = get_logger("dispatch.relay")
_LISTEN_ERRORS: tuple[type[BaseException], ...] = (*TRANSIENT, psycopg.Error)
_SUMMARY = ("grid", "category", "priority", "channel", "description", "location")


class Relay:
    def __init__(self, runtime: Runtime, settings: KafkaSettings, *, batch_size: int = 2000,
                 idle_sleep: float = 0.2, name: str | None = None, health: ProcessHealth | None = None):
        self.health, self.availability = health, Availability(health, "relay")
        self.app, self.topics, self.settings = runtime.app, settings.topics, settings
        self._doors: set[str] = set()
        self._door_retry: dict[str, float] = {}
        self.recorder = cast(ProcessRecorder, self.app.recorder)
        self.batch_size, self.idle_sleep = batch_size, idle_sleep
        self._next_probe = time.monotonic() + PROBE_EVERY
        self.name = name or f"relay:{self.topics.ticket_events}"
        self.producer = make_producer(settings)
        self.position = self.stored_position()
        self._summaries: dict[UUID, dict[str, Any]] = {}  # ticket id -> what a department needs to know
        self._states: dict[UUID, Any] = {}  # ticket id -> lifecycle state after its last relayed event
        self._versions: dict[UUID, int] = {}
        self.counts = {"events": 0, "whistles": 0, "batches": 0}
        self._listening: tuple[contextlib.ExitStack, Any] | None = None

    def _listener(self) -> Any:
        """A connection LISTENing to the event store's NOTIFY channel (PostgreSQL), or None."""
        if self._listening is None:
            stack = contextlib.ExitStack()
            try:
                conn = stack.enter_context(listen(self.recorder))
            except _LISTEN_ERRORS:
                stack.close()
                return None
            if conn is None:
                stack.close()
                return None
            self._listening = (stack, conn)
        return self._listening[1]

    def _stop_listening(self) -> None:
        if self._listening is not None:
            stack, self._listening = self._listening[0], None
            with contextlib.suppress(Exception):
                stack.close()

    def wait_for_events(self, stop_event: threading.Event) -> None:
        """Until new events may have committed (a NOTIFY), at most ``idle_sleep`` seconds."""
        conn = self._listener()
        if conn is None:
            stop_event.wait(self.idle_sleep)
            return
        try:
            for _ in conn.notifies(timeout=self.idle_sleep, stop_after=1):
                break
            for _ in conn.notifies(timeout=0):  # the next relay_once covers every pending one
                pass
        except _LISTEN_ERRORS as error:
            log.warning("listen connection lost", error=f"{type(error).__name__}: {error}")
            self._stop_listening()
            stop_event.wait(self.idle_sleep)

    def stored_position(self) -> int:
        return self.recorder.max_tracking_id(self.name) or 0

    def _summary(self, ticket_id: UUID) -> dict[str, Any]:
        summary = self._summaries.get(ticket_id)
        if summary is None:
            ticket = self.app.get_ticket(ticket_id)
            summary = {k: getattr(ticket, k) for k in _SUMMARY}
        return summary

    def _state_after(self, record: Any) -> Any:
        """The ticket's lifecycle state after ``record`` (``dispatch.domain.lifecycle.fold``), kept per
        ticket as the stream goes by; a ticket first seen mid-history starts from the store."""
        tid = record.ticket_id
        state = self._states.get(tid)
        if record.type == "Reported":
            state = new_state()
        elif state is None or self._versions.get(tid) != record.version - 1:
            state = self.app.repository.get(tid, version=record.version - 1)  # the aggregate is a state
        fold(state, record.type, record.data, record.occurred_at, record.version)
        if len(self._states) > 100_000:
            self._states.clear()
            self._versions.clear()
        self._states[tid], self._versions[tid] = state, record.version
        return state

    def relay_once(self) -> int:
        """Relay the next batch of notifications; returns how many."""
        notifications = self.recorder.select_notifications(self.position + 1, self.batch_size)
        if not notifications:
            return 0
        records = records_from_notifications(notifications, self.app.mapper)
        futures, whistles = [], 0
        for record in records:
            if record.type == "Reported":
                if len(self._summaries) > 100_000:
                    self._summaries.clear()
                self._summaries[record.ticket_id] = {k: record.data.get(k) for k in _SUMMARY}
            key = str(record.ticket_id).encode()
            futures.append(self.producer.send(self.topics.ticket_events, key=key, value=record_to_json(record)))
            summary = self._summary(record.ticket_id) if record.type in ("Dispatched", "Redispatched") else None
            for dept, value in whistle_messages(record, summary, self._state_after(record)):
                futures.append(self.producer.send(self.topics.whistle, key=dept, value=value))
                # and on the department's own door, the one topic of calls its principal may read
                door = self._door(dept.decode())
                if door is not None:
                    futures.append(self.producer.send(door, key=dept, value=value))
                whistles += 1
        self.producer.flush(timeout=60)
        for future in futures:
            future.get(timeout=60)  # raises if the broker did not take it
        last = notifications[-1].id
        try:
            self.recorder.insert_tracking(Tracking(self.name, last))
        except IntegrityError:  # someone else recorded further: follow them
            log.warning("relay position moved by another process", name=self.name)
        self.position = max(last, self.stored_position())
        self.counts["events"] += len(records)
        self.counts["whistles"] += whistles
        self.counts["batches"] += 1
        if self.health is not None:
            self.health.events.inc(len(records))
            self.health.store_lag.set(max(0, self._last_notification_id() - self.position))
        log.info("relayed", events=len(records), whistles=whistles, position=last)
        return len(records)

    def _door(self, department: str) -> str | None:
        """The department's whistle topic, made the first time a call goes to a department the
        topics were not made for (one added to the reference data since). None (and an error line,
        once a minute) if it cannot be made: run ``dispatch topics`` with the cluster's rights."""
        if department not in self._doors:
            if time.monotonic() < self._door_retry.get(department, 0.0):
                return None
            try:
                ensure_topics(self.settings, only=[self.topics.whistle_of(department)])
            except DispatchError as error:
                log.error("department topic missing; its desk gets no calls until it exists",
                          department=department, error=str(error))
                self._door_retry[department] = time.monotonic() + 60
                return None
            self._doors.add(department)
        return self.topics.whistle_of(department)

    def step(self) -> int:
        try:
            relayed = self.relay_once()
            if not relayed and time.monotonic() >= self._next_probe:  # idle: does the broker still answer?
                self._next_probe = time.monotonic() + PROBE_EVERY
                if not broker_answers(self.settings):
                    from kafka.errors import KafkaConnectionError

                    raise KafkaConnectionError(f"no broker of {self.settings.bootstrap} accepts a connection")
        except TRANSIENT as error:
            self.availability.failed(error, 1.0)
            time.sleep(1.0)
            try:
                self.position = self.stored_position()  # send the unacknowledged batch again
            except TRANSIENT:
                pass
            return 0
        self.availability.succeeded()
        return relayed

    def run(self, stop_event: threading.Event) -> None:
        self._listener()  # LISTEN before the first read: no commit in between goes unnoticed
        while not stop_event.is_set():
            if self.step() == 0:
                self.wait_for_events(stop_event)

    def run_until_idle(self, *, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while self.step() > 0 or self.position < self._last_notification_id():
            if time.monotonic() > deadline:
                raise TimeoutError("relay did not catch up")

    def _last_notification_id(self) -> int:
        return self.recorder.max_notification_id() or 0

    def close(self) -> None:
        self._stop_listening()
        self.producer.close()


@click.command(name="python -m consumers.relay")
@process_options
def main(db: str | None, kafka: str | None, topic_prefix: str | None, log_level: str,
         metrics_port: int | None) -> None:
    """The relay: the event store → ticket-events and whistle, until SIGTERM / SIGINT."""
    from consumers.engine import stop_on_signals

    stop = stop_on_signals()
    run_process(db, kafka, topic_prefix, log_level,
                lambda runtime, settings: run_relay(runtime, settings, stop, metrics_port=metrics_port), stop=stop)


def run_relay(runtime: Runtime, settings: KafkaSettings, stop: threading.Event, *,
              metrics_port: int | None = None) -> dict[str, int]:
    health = ProcessHealth("relay")
    if metrics_port is not None:
        health.serve(metrics_port)
    try:  # the port is given back if the start fails (the process tries again)
        ensure_topics(settings, departments=runtime.reference.departments)
        relay = Relay(runtime, settings, health=health)
        log.info("relay started", name=relay.name, position=relay.position)
        try:
            relay.run(stop)
        finally:
            relay.close()
    finally:
        health.close()
    return relay.counts


if __name__ == "__main__":
    main()
