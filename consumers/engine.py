"""The engine: intake commands from Kafka into the ticket aggregates (``dispatch serve``).

Per poll and partition: decode and validate each message, then ONE
``app.execute_batch(commands, tracking=...)`` that records every accepted event and the
partition's offset in one database transaction. Refused messages (bad JSON, unknown
type, missing fields, unknown grid, oversized, illegal transition, duplicate command
id, …) become dead letters; they are produced and flushed in ``before_record``, i.e.
before the transaction that stores the batch's offset, so a crash in between re-sends
them on restart (duplicates in the dead-letter topic are possible; loss is not).

Positions. The consumer ignores Kafka's committed offsets: on every assignment it seeks
to ``app.recorder.max_tracking_id("<topic>:<partition>") + 1``.

The race, and why nothing is applied twice. Two processes may believe they own a
partition at once: process A is evicted from the group (a long pause, a lost broker
connection) while still working on a batch, and B, the new owner, starts from the stored
position. A checks its assignment before saving (``owns``), but that is A's *local*
view — it learns of the eviction only in its next poll. So the database decides: the
tracking row is written with compare-and-set (``FencedTracking``: update only if the
stored offset is still the one this batch started after), inside the transaction that
inserts the events. Both A and B started after the same stored offset S; whichever
commits first moves it past S, and the other's transaction fails as a whole (no events,
no position), rewinds to the new stored position and, if it is still the owner, goes on
from there. PostgreSQL row locking makes the second writer wait for the first and then
re-check the condition, so there is no window between check and write. (A plain
"greater than" condition — eventsourcing's default — is not enough: A saving 100..180
and B saving 100..199 would both pass.)
"""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any, cast

import structlog
from eventsourcing.persistence import ProcessRecorder
from kafka import TopicPartition

from consumers.base import TRANSIENT, PartitionedConsumer, Rewind
from dispatch.application import Outcome
from dispatch.bootstrap import Runtime, bootstrap
from dispatch.commands import parse_command
from dispatch.errors import ConcurrentChange, InvalidCommand
from dispatch.kafka import DeadLetter, DeadLetterSender, FencedTracking, KafkaSettings, install_fence, make_producer
from dispatch.logs import configure_logging

__all__ = ["DEFAULT_MAX_MESSAGE_BYTES", "Engine", "main"]

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024
log = structlog.get_logger("dispatch.engine")


class _PartitionLost(Exception):
    pass


_PASS_THROUGH: tuple[type[BaseException], ...] = (Rewind, *TRANSIENT)


class Engine(PartitionedConsumer):
    """``Engine(runtime, settings).run(stop_event)`` or ``.run_until_idle()``."""

    def __init__(self, runtime: Runtime, settings: KafkaSettings, *, group: str | None = None,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, **options: Any):
        self.app = runtime.app
        self.recorder = cast(ProcessRecorder, self.app.recorder)
        install_fence(self.recorder)
        self.max_message_bytes = max_message_bytes
        self.dead_letters = DeadLetterSender(make_producer(settings), settings.topics.dead_letters)
        self.counts = {"applied": 0, "refused": 0, "dead": 0, "batches": 0}
        super().__init__(settings, settings.topics.intake, group or f"{settings.prefix}engine", **options)

    def stored_position(self, tp: TopicPartition) -> int | None:
        return self.recorder.max_tracking_id(self.source(tp))

    def _decode(self, record: Any) -> tuple[Any, DeadLetter | None]:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(topic=record.topic, partition=record.partition, offset=record.offset)
        value = record.value
        if value is not None and len(value) > self.max_message_bytes:
            return None, DeadLetter.of(record, "oversized", f"{len(value)} bytes > {self.max_message_bytes}")
        try:
            if not value:
                raise InvalidCommand("empty message")
            command = parse_command(value)
        except InvalidCommand as error:
            return None, DeadLetter.of(record, error.code, str(error))
        structlog.contextvars.bind_contextvars(ticket_id=str(getattr(command, "ticket_id", "") or ""))
        return command, None

    def process(self, tp: TopicPartition, records: list[Any]) -> None:
        try:
            self._apply(tp, records)
        except _PASS_THROUGH:
            raise
        except Exception:  # noqa: BLE001 - a bug meets a message: find it, dead-letter it, go on
            log.exception("batch failed; applying its messages one by one", partition=tp.partition)
            for record in records:
                if tp not in self.owned:
                    return
                try:
                    self._apply(tp, [record])
                except _PASS_THROUGH:
                    raise
                except Exception as error:  # noqa: BLE001
                    letter = DeadLetter.of(record, "internal_error", f"{type(error).__name__}: {error}")
                    self._apply(tp, [], dead=[letter], last_offset=record.offset)

    def _apply(self, tp: TopicPartition, records: list[Any], *, dead: list[DeadLetter] | None = None,
               last_offset: int | None = None) -> None:
        expected = self.owned[tp]
        last = records[-1].offset if records else last_offset
        assert last is not None
        dead = list(dead or [])
        commands, origins = [], []
        for record in records:
            command, letter = self._decode(record)
            if letter is None:
                commands.append(command)
                origins.append(record)
            else:
                dead.append(letter)
        structlog.contextvars.clear_contextvars()

        def before_record(outcomes: list[Outcome]) -> None:
            for outcome, record in zip(outcomes, origins):
                if outcome.error is not None:
                    dead.append(DeadLetter.of(record, outcome.error.code, str(outcome.error)))
            dead.sort(key=lambda letter: letter.offset)
            if not self.owns(tp, expected):
                raise _PartitionLost
            self.dead_letters.send_all(dead)

        tracking = FencedTracking(self.source(tp), last, expected)
        try:
            outcomes = self.app.execute_batch(commands, tracking=tracking, before_record=before_record)
        except _PartitionLost:
            log.info("partition lost mid-batch; not recorded", partition=tp.partition)
            return
        except ConcurrentChange as error:
            raise Rewind(str(error)) from None
        self.owned[tp] = last
        self.dead_letters.count(dead)
        applied = sum(1 for o in outcomes if o.ok)
        self.counts["applied"] += applied
        self.counts["refused"] += len(outcomes) - applied
        self.counts["dead"] += len(dead)
        self.counts["batches"] += 1
        log.info("batch applied", topic=tp.topic, partition=tp.partition, first_offset=records[0].offset if records
                 else last, last_offset=last, messages=len(records), applied=applied, dead=len(dead), lag=self.lag(tp))

    def close(self) -> None:
        super().close()
        self.dead_letters.producer.close()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="event store URL (postgresql://… or a SQLite path) [env DISPATCH_DB]")
    parser.add_argument("--kafka", help="bootstrap servers [env DISPATCH_KAFKA]")
    parser.add_argument("--topic-prefix", help="topic name prefix [env DISPATCH_TOPIC_PREFIX; default dispatch.]")
    parser.add_argument("--group", help="consumer group [default <prefix>engine]")
    parser.add_argument("--max-poll-records", type=int, default=2000)
    parser.add_argument("--max-message-bytes", type=int, default=DEFAULT_MAX_MESSAGE_BYTES)
    parser.add_argument("--session-timeout-ms", type=int, default=10_000,
                        help="how soon the group gives a dead engine's partitions to another")
    parser.add_argument("--log-level", default="INFO")


def stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def serve(runtime: Runtime, settings: KafkaSettings, stop: threading.Event, *, group: str | None = None,
          max_poll_records: int = 2000, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
          session_timeout_ms: int = 10_000) -> dict[str, int]:
    """Run the engine until ``stop`` is set (SIGTERM / SIGINT); return its counts."""
    from dispatch.kafka import ensure_topics

    ensure_topics(settings)
    engine = Engine(runtime, settings, group=group, max_poll_records=max_poll_records,
                    max_message_bytes=max_message_bytes, session_timeout_ms=session_timeout_ms)
    log.info("engine started", group=engine.group, topic=engine.topic, db=runtime.db.display)
    try:
        engine.run(stop)
    finally:
        engine.close()
        log.info("engine stopped", **engine.counts)
    return engine.counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m consumers.engine", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    settings = KafkaSettings.from_env(args.kafka, args.topic_prefix)
    stop = stop_on_signals()
    runtime = bootstrap(args.db)
    try:
        serve(runtime, settings, stop, group=args.group, max_poll_records=args.max_poll_records,
              max_message_bytes=args.max_message_bytes, session_timeout_ms=args.session_timeout_ms)
    finally:
        runtime.close()


if __name__ == "__main__":
    main()
