"""The projector: ticket-events from Kafka into the read models (``dispatch project``).

Per poll, one transaction: ``apply_batch`` over the records of every partition polled,
with each partition's position (``source="<topic>:<partition>"``, its last offset), so the
read-model rows and the positions commit together. On every assignment the consumer seeks to
``stored_position(source) + 1`` (or the beginning).
No fencing is needed here: ``apply_batch`` skips any event whose (ticket id, version)
is already applied, so an overlap between two projector processes, or a redelivery by
the relay, has no second effect. An undecodable message (only a foreign producer could
write one) goes to the dead-letter topic and is skipped.

All partitions of one poll are applied in ONE transaction and one ``apply_batch`` (the
tickets read, each table written and the positions stored once for them all; a ticket's
events are all in one partition): at a steady trickle a poll brings a few events from each
of several partitions, and statements and a commit per partition would cost more than the
work — the time a report takes to show on a dashboard is mostly these round trips.
"""

from __future__ import annotations

import threading
from typing import Any

import click
from dispatch.adapters.logs import get_logger
from kafka import TopicPartition

from consumers.base import PartitionedConsumer
from consumers.process import process_options, run_process
from dispatch.adapters.kafka import DeadLetter, DeadLetterSender, KafkaSettings, ensure_topics, make_producer
from dispatch.bootstrap import Runtime
from dispatch.projections import create_tables, stored_position
from dispatch.projections.apply_events import apply_batch
from dispatch.projections.records import EventRecord, record_from_json

__all__ = ["Projector", "main"]

log = get_logger("dispatch.projector")


class Projector(PartitionedConsumer):
    def __init__(self, runtime: Runtime, settings: KafkaSettings, *, group: str | None = None, **options: Any):
        self.engine = runtime.engine
        create_tables(self.engine)
        self.dead_letters = DeadLetterSender(make_producer(settings), settings.topics.dead_letters)
        self.counts = {"events": 0, "applied": 0, "dead": 0, "batches": 0}
        super().__init__(settings, settings.topics.ticket_events, group or f"{settings.prefix}projector", **options)

    def probe_database(self) -> None:
        with self.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    def stored_position(self, tp: TopicPartition) -> int | None:
        return stored_position(self.engine, self.source(tp))

    def poll_once(self) -> int:
        batches = self.consumer.poll(timeout_ms=self.poll_timeout_ms, max_records=self.max_poll_records)
        parts = [(tp, records) for tp, records in batches.items() if tp in self.owned and records]
        if parts:
            self._project(parts)
        return sum(len(records) for _, records in parts)

    def process(self, tp: TopicPartition, records: list[Any]) -> None:
        self._project([(tp, records)])

    def _project(self, parts: list[tuple[TopicPartition, list[Any]]]) -> None:
        decoded: list[tuple[TopicPartition, list[Any], list[EventRecord]]] = []
        dead: list[DeadLetter] = []
        for tp, records in parts:
            events: list[EventRecord] = []
            for record in records:
                try:
                    events.append(record_from_json(record.value))
                except (ValueError, KeyError, TypeError) as error:
                    dead.append(DeadLetter.of(record, "invalid_event", f"not a ticket event: {error}"))
            decoded.append((tp, records, events))
        self.dead_letters.send_all(dead)
        positions = {self.source(tp): records[-1].offset for tp, records, _ in decoded}
        (source, position), *more = positions.items()
        events = [event for _, _, part in decoded for event in part]
        with self.engine.begin() as conn:  # every partition's rows and position: one transaction
            applied = apply_batch(conn, events, source=source, position=position, also=dict(more))
        self.dead_letters.count(dead)
        if self.health is not None:
            self.health.events.inc(len(events))
            for letter in dead:
                self.health.dead_letters.labels(letter.code).inc()
        for tp, records, _ in decoded:
            self.owned[tp] = records[-1].offset
        self.counts["events"] += len(events)
        self.counts["applied"] += applied
        self.counts["dead"] += len(dead)
        self.counts["batches"] += 1
        lags = [self.lag(tp) for tp, _, _ in decoded]
        log.info("events projected", topic=decoded[0][0].topic,
                 last_offsets={tp.partition: records[-1].offset for tp, records, _ in decoded},
                 messages=sum(len(records) for _, records, _ in decoded), applied=applied,
                 skipped=len(events) - applied, dead=len(dead),
                 lag=None if None in lags else sum(lag for lag in lags if lag is not None))

    def close(self) -> None:
        super().close()
        self.dead_letters.producer.close()


def run_projector(runtime: Runtime, settings: KafkaSettings, stop: threading.Event,
                  group: str | None = None, *, metrics_port: int | None = None) -> dict[str, int]:
    from consumers.metrics import ProcessHealth

    health = ProcessHealth("projector")
    if metrics_port is not None:
        health.serve(metrics_port)
    try:  # the port is given back if the start fails (the process tries again)
        ensure_topics(settings)
        projector = Projector(runtime, settings, group=group, health=health)
        log.info("projector started", group=projector.group, topic=projector.topic)
        try:
            projector.run(stop)
        finally:
            projector.close()
    finally:
        health.close()
    return projector.counts


@click.command(name="python -m consumers.projector")
@process_options
@click.option("--group", help="Consumer group [default <prefix>projector].")
def main(db: str | None, kafka: str | None, topic_prefix: str | None, log_level: str, metrics_port: int | None,
         group: str | None) -> None:
    """The projector: ticket-events → read models, until SIGTERM / SIGINT."""
    from consumers.engine import stop_on_signals

    stop = stop_on_signals()
    run_process(db, kafka, topic_prefix, log_level,
                lambda runtime, settings: run_projector(runtime, settings, stop, group, metrics_port=metrics_port), stop=stop)


if __name__ == "__main__":
    main()
