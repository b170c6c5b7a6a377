"""A department's desk: its whistle calls in, its answers out (``dispatch department``).

One process per department, behind a door of its own: it reads its calls from
``<prefix>whistle.<slug>`` and writes its answers to ``<prefix>answers.<slug>``
(``Topics.whistle_of`` / ``answers_of``; ``slug`` makes any department id an ASCII name).
Kafka's ACLs are per topic, not per key, so a topic each is what lets a broker keep a
department's principal to its own calls and answers (``dispatch kafka-acls``); the engine
takes the acting department from the answers topic a message came from, and dead-letters a
body that claims another. (The relay also keeps every call on the shared ``whistle`` topic,
keyed by department, for operators; desks have no reason to read it.)

Answers are acknowledge / reject / handle commands keyed by ticket id, naming the dispatch
they answer (``dispatch_no``, from the call's id), so an answer that reaches the engine before
that dispatch waits for it there and one to a replaced dispatch is refused. Command ids are
derived from the call (``<dept>:<call>:<ticket>:ack``), so a redelivered call cannot be
answered twice (the engine refuses a seen command id). Its consumer offsets are committed
to Kafka after the answers are flushed: a department keeps no database.

Automatic mode (the simulation): every call is acknowledged after ``ack_delay`` —
or rejected with probability ``reject_rate`` — and, for the lead department, handled
``handle_delay`` later. Business times are the call's dispatch time + the delays, never
the wall clock; the choice per call is seeded by (seed, ticket, call), so a run is
deterministic whatever the delivery order.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import structlog


from dispatch.adapters.logs import get_logger
from kafka import KafkaProducer, TopicPartition

from consumers.metrics import ProcessHealth
from dispatch.adapters.kafka import KafkaSettings, intake_key, make_consumer, make_producer, whistle_from_json
from dispatch.adapters.kafka.topics import department_slug
from dispatch.domain.commands import Acknowledge, Handle, Reject, command_to_json
from dispatch.domain.lifecycle import call_state, dispatch_no_of

__all__ = ["AutoPolicy", "DepartmentDesk", "Inbox"]

log = get_logger("dispatch.department")


@dataclass(frozen=True)
class AutoPolicy:
    ack_delay_minutes: float = 15.0
    handle_delay_minutes: float = 240.0
    reject_rate: float = 0.0
    seed: int = 0
    reject_reason: str = "不属于本部门职责"

    def answers(self, department: str, call: dict[str, Any]) -> list[Any]:
        rng = random.Random(f"{self.seed}:{call['ticket_id']}:{call['call_id']}")
        actor = {"role": "department", "id": f"{department}-auto", "department": department}
        base = {"ticket_id": call["ticket_id"], "actor": actor, "department": department,
                "dispatch_no": dispatch_no_of(call["call_id"])}
        at = call["dispatched_at"] + timedelta(minutes=self.ack_delay_minutes)
        cid = f"{department}:{call['call_id']}:{call['ticket_id']}"
        if rng.random() < self.reject_rate:
            return [Reject(**base, occurred_at=at, command_id=f"{cid}:reject", reason=self.reject_reason)]
        answers: list[Any] = [Acknowledge(**base, occurred_at=at, command_id=f"{cid}:ack")]
        if call["role"] == "lead":
            done = at + timedelta(minutes=self.handle_delay_minutes)
            answers.append(Handle(**base, occurred_at=done, command_id=f"{cid}:handle", result="已处置"))
        return answers


class Inbox:
    """The calls a department still has to answer (acknowledge or reject) or, as lead, handle."""

    def __init__(self) -> None:
        self.calls: dict[tuple[UUID, str], dict[str, Any]] = {}

    def add(self, message: dict[str, Any]) -> None:
        """A whistle message: a call joins as ``waiting``; an answer moves its call to the state
        the lifecycle gives it (``dispatch.domain.lifecycle.call_state``), and a ``done`` call leaves."""
        ticket_id = message["ticket_id"]
        if message["kind"] == "call":
            self.calls.setdefault((ticket_id, message["call_id"]), dict(message, state=call_state(message["role"], None)))
            return
        if message["kind"] == "deadline":  # an extension or a resume moved the call's deadlines
            call = self.calls.get((ticket_id, message["call_id"]))
            if call is not None:
                call.update({k: message[k] for k in ("ack_due", "handle_due") if k in message})
            return
        handled = message["answer"] == "handled"
        keys = [k for k in self.calls if k[0] == ticket_id] if handled else [(ticket_id, message.get("call_id", ""))]
        for key in keys:
            call = self.calls.get(key)
            if call is None:
                continue
            # the relay says where the call now stands; a message from an older relay does not
            state = message.get("state") or call_state(call["role"], None if handled else message["answer"],
                                                       handled=handled)
            if state == "done":
                del self.calls[key]
            else:
                call["state"] = state

    def pending(self) -> list[dict[str, Any]]:
        return sorted(self.calls.values(), key=lambda c: (c["ack_due"], str(c["ticket_id"])))


class DepartmentDesk:
    def __init__(self, settings: KafkaSettings, department: str, *, auto: AutoPolicy | None = None,
                 producer: KafkaProducer | None = None, group: str | None = None, health: ProcessHealth | None = None):
        self.settings, self.department, self.auto, self.health = settings, department, auto, health
        self.topics = settings.topics
        self.group = group or f"{settings.prefix}department.{department_slug(department)}"
        self._producer = producer
        self.counts = {"calls": 0, "answers_sent": 0}

    @property
    def producer(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = make_producer(self.settings)
        return self._producer

    def _partition(self, consumer: Any) -> TopicPartition:
        """Its own door's calls: the one whistle topic its principal may read (one partition)."""
        topic = self.topics.whistle_of(self.department)
        if not consumer.partitions_for_topic(topic):
            raise RuntimeError(f"topic {topic} does not exist, or this principal may not read it "
                               "(create the topics with 'dispatch topics'; ACLs: 'dispatch kafka-acls')")
        return TopicPartition(topic, 0)

    def _mine(self, record: Any) -> dict[str, Any] | None:
        if record.key != self.department.encode():
            return None
        return whistle_from_json(record.value)

    def inbox(self) -> list[dict[str, Any]]:
        """Read this department's whistle partition from the start to its current end."""
        consumer = make_consumer(self.settings, None)
        try:
            tp = self._partition(consumer)
            consumer.assign([tp])
            consumer.seek_to_beginning(tp)
            end = consumer.end_offsets([tp])[tp]
            inbox = Inbox()
            while consumer.position(tp) < end:
                for record in consumer.poll(timeout_ms=1000).get(tp, []):
                    message = self._mine(record)
                    if message is not None:
                        inbox.add(message)
            return inbox.pending()
        finally:
            consumer.close()

    def send(self, commands: list[Any]) -> None:
        """Answer on its own answers topic (the engine takes the department from the topic's
        name); returns once the broker has them."""
        topic = self.topics.answers_of(self.department)
        futures = [self.producer.send(topic, key=intake_key(c), value=command_to_json(c)) for c in commands]
        self.producer.flush(timeout=60)
        for future in futures:
            future.get(timeout=60)
        self.counts["answers_sent"] += len(futures)
        if self.health is not None:
            self.health.answers.inc(len(futures))

    def follow(self, stop: threading.Event, on_message: Callable[[dict[str, Any]], None] | None = None) -> None:
        """Receive calls as they come; in auto mode answer them. Commits offsets after answering."""
        consumer = make_consumer(self.settings, self.group)
        try:
            tp = self._partition(consumer)
            consumer.assign([tp])
            while not stop.is_set():
                records = consumer.poll(timeout_ms=500).get(tp, [])
                answers: list[Any] = []
                for record in records:
                    message = self._mine(record)
                    if message is None:
                        continue
                    structlog.contextvars.bind_contextvars(
                        topic=record.topic, partition=record.partition, offset=record.offset,
                        ticket_id=str(message["ticket_id"]))
                    if on_message is not None:
                        on_message(message)
                    if message["kind"] == "call":
                        self.counts["calls"] += 1
                        if self.health is not None:
                            self.health.calls.inc()
                        if self.auto is not None:
                            answers += self.auto.answers(self.department, message)
                structlog.contextvars.clear_contextvars()
                if answers:
                    self.send(answers)
                    log.info("answered calls", department=self.department, commands=len(answers))
                if records:
                    consumer.commit()
                if self.health is not None:
                    highwater = consumer.highwater(tp)
                    if highwater is not None:
                        self.health.set_lag(tp.topic, tp.partition, highwater - consumer.position(tp))
        finally:
            consumer.close()

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close()


def call_line(message: dict[str, Any]) -> str:
    """One human line for a whistle message."""
    if message["kind"] == "call":
        t = message.get("ticket") or {}
        return (f"CALL  {message['ticket_id']}  {message['role']:<11} ack by {_hm(message['ack_due'])}  "
                f"{t.get('category', '')} {t.get('grid', '')} {t.get('description', '')}".rstrip())
    return f"{message['answer'].upper():<6}{message['ticket_id']}  at {_hm(message['answered_at'])}"


def _hm(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M")
