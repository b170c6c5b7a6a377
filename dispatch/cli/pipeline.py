"""Run simulated commands through Kafka: intake topic → engine → event store → relay →
ticket-events topic → projector → read models, all consumers in this process.

Per watchdog tick the tick's commands are produced to the intake topic, then the engine,
the relay and the projector are stepped until the read models hold everything produced;
then the watchdog's policy (``dispatch.service.watchdog.open_deadlines`` / ``due_escalations``)
reads the read models and its Escalate commands go through the intake topic too.
(``Watchdog.tick`` is not used here: it catches the projections up from the event
store, which in this mode is the projector's job.)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from kafka import TopicPartition

from consumers.engine import Engine
from consumers.projector import Projector
from consumers.relay import Relay
from dispatch.adapters.kafka import KafkaSettings, ensure_topics, intake_key, make_producer
from dispatch.domain.commands import command_to_json
from dispatch.service.simulation.runner import DEFAULT_TICK, EngineReport, ticks
from dispatch.service.watchdog import due_escalations, open_deadlines

__all__ = ["KafkaPipeline", "run_kafka"]


class KafkaPipeline:
    """The three consumers of a deployment, stepped in turn in one thread."""

    def __init__(self, runtime: Any, settings: KafkaSettings, *, timeout: float = 120.0):
        ensure_topics(settings, departments=runtime.reference.departments)
        self.runtime, self.settings, self.timeout = runtime, settings, timeout
        self.producer = make_producer(settings)
        self.engine = Engine(runtime, settings, poll_timeout_ms=50)
        self.relay = Relay(runtime, settings, idle_sleep=0.0)
        self.projector = Projector(runtime, settings, poll_timeout_ms=50)

    def send(self, commands: Iterable[Any]) -> dict[int, int]:
        """Produce to the intake topic; return the last offset per partition."""
        futures = [self.producer.send(self.settings.topics.intake, key=intake_key(cmd), value=command_to_json(cmd))
                   for cmd in commands]
        self.producer.flush(timeout=self.timeout)
        last: dict[int, int] = {}
        for future in futures:
            meta = future.get(timeout=self.timeout)
            last[meta.partition] = max(last.get(meta.partition, -1), meta.offset)
        return last

    def _until(self, consumer: Any, topic: str, targets: dict[int, int], what: str) -> None:
        deadline = time.monotonic() + self.timeout
        wanted = {TopicPartition(topic, p): offset for p, offset in targets.items() if offset >= 0}
        while any(consumer.owned.get(tp) is None or consumer.owned[tp] < offset for tp, offset in wanted.items()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the {what} did not catch up within {self.timeout:.0f}s")
            consumer.step()

    def settle(self, produced: dict[int, int]) -> None:
        """Step engine, relay and projector until the read models hold every produced command's events."""
        self._until(self.engine, self.settings.topics.intake, produced, "engine")
        self.relay.run_until_idle(timeout=self.timeout)
        topic = self.settings.topics.ticket_events
        tps = [TopicPartition(topic, p) for p in sorted(self.projector.consumer.partitions_for_topic(topic) or [])]
        ends = self.projector.consumer.end_offsets(tps)
        self._until(self.projector, topic, {tp.partition: end - 1 for tp, end in ends.items()}, "projector")

    def refused(self) -> int:
        return self.engine.counts["refused"] + self.engine.counts["dead"]

    def close(self) -> None:
        for part in (self.engine, self.relay, self.projector):
            part.close()
        self.producer.close()


def run_kafka(
    runtime: Any,
    settings: KafkaSettings,
    commands: Iterable[tuple[datetime, Any]],
    *,
    start: datetime,
    end: datetime,
    tick: timedelta = DEFAULT_TICK,
    on_tick: Callable[[datetime], None] | None = None,
) -> EngineReport:
    """Like ``run_embedded``, through Kafka: every command and escalation goes via the intake topic."""
    report = EngineReport()
    pipeline = KafkaPipeline(runtime, settings)
    pending: list[Any] = []

    def flush(at: datetime) -> None:
        if pending:
            pipeline.settle(pipeline.send(pending))
            report.commands += len(pending)
            report.batches += 1
            pending.clear()
        runtime.clock.set(at)
        report.ticks += 1
        escalations = due_escalations(open_deadlines(runtime.engine, at, runtime.reference), at)
        if escalations:
            before = pipeline.refused()
            pipeline.settle(pipeline.send(escalations))
            refused = pipeline.refused() - before
            report.escalations += len(escalations) - refused
            report.escalations_refused += refused
        if on_tick is not None:
            on_tick(at)

    try:
        instants = iter(ticks(start, end, tick))
        next_tick = next(instants)
        for at, command in commands:
            while at > next_tick:
                flush(next_tick)
                next_tick = next(instants)
            runtime.clock.set(at)
            pending.append(command)
        for instant in (next_tick, *instants):
            flush(instant)
        refused = pipeline.refused() - report.escalations_refused
        if refused:
            report.refused["refused_by_engine"] = refused
    finally:
        pipeline.close()
    return report
