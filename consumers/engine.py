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

from datetime import timedelta
import signal
import threading
import time
from typing import Any, cast

import click
from dispatch.adapters.logs import get_logger
from eventsourcing.persistence import ProcessRecorder
from kafka import TopicPartition

from consumers.base import TRANSIENT, PartitionedConsumer, Rewind
from consumers.process import process_options, run_process
from dispatch.adapters import parked_store
from dispatch.adapters.eventstore import WithOutcomes
from dispatch.adapters.kafka import (
    DeadLetter,
    DeadLetterSender,
    FencedTracking,
    FencedTrackings,
    KafkaSettings,
    install_fence,
    make_producer,
)
from dispatch.adapters.kafka.topics import WRITERS
from dispatch.adapters.outcome_log import ensure_table
from dispatch.bootstrap import Runtime
from dispatch.domain.commands import parse_command
from dispatch.domain.errors import (ConcurrentChange, ForgedActor, ForgedDepartment, Forbidden, InvalidCommand, NotAnAnswer,
                                    Oversized)
from dispatch.service.application import Outcome
from dispatch.service.parking import REPORT_WINDOW, Lot

__all__ = ["DEFAULT_MAX_MESSAGE_BYTES", "Engine", "main"]

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024
log = get_logger("dispatch.engine")


class _PartitionLost(Exception):
    pass


_PASS_THROUGH: tuple[type[BaseException], ...] = (Rewind, *TRANSIENT)


def _ticket_of(record: Any) -> str | None:
    """The ticket a raw intake message is about, for log lines: its key (``intake_key``)."""
    return record.key.decode(errors="replace") if record.key else None


ANSWERS = frozenset({"acknowledge", "reject", "handle", "feedback", "request_extension"})


def through_door(command: Any, department: str, topic: str) -> Any:
    """A command from a department's answers topic, as that department: the topic (which the
    broker's ACLs let only that department's principal write) says who acts; a body claiming
    another department or role is forged, and anything but an answer has no business there."""
    if command.type not in ANSWERS:
        raise NotAnAnswer(f"{topic} carries a department's answers, not a {command.type!r} command")
    actor = command.actor
    claimed = {c for c in (getattr(command, "department", None), actor.department) if c is not None}
    if actor.role != "department" or claimed - {department}:
        who = ", ".join(sorted(claimed)) or actor.role
        raise ForgedDepartment(f"a message on {topic} (department {department}) claims to act as {who}")
    return command.model_copy(update={"actor": actor.model_copy(update={"department": department})})


def from_writer(command: Any, writer: str, topic: str) -> Any:
    """A command from a writer's own intake, held to what that writer may claim: the 12345
    platform (``hotline``) only hotline actors, the watchdog only the system's escalations."""
    actor = command.actor
    if writer == "hotline" and actor.role != "hotline":
        raise ForgedActor(f"a message on {topic} (the hotline's) claims to act as {actor.role}")
    if writer == "watchdog" and (command.type != "escalate" or actor.role != "system"):
        raise ForgedActor(f"a message on {topic} (the watchdog's) is a {command.type!r} by {actor.role}; "
                          "only the system's escalations come that way")
    return command


class Engine(PartitionedConsumer):
    """``Engine(runtime, settings).run(stop_event)`` or ``.run_until_idle()``."""

    def __init__(self, runtime: Runtime, settings: KafkaSettings, *, group: str | None = None,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, sweep_seconds: float = 10.0,
                 report_window: timedelta = REPORT_WINDOW, **options: Any):
        self.app = runtime.app
        self.report_window = report_window  # how long a command waits for its ticket's report
        self.recorder = cast(ProcessRecorder, self.app.recorder)
        install_fence(self.recorder)
        ensure_table(runtime.engine)
        self.max_message_bytes = max_message_bytes
        self.dead_letters = DeadLetterSender(make_producer(settings), settings.topics.dead_letters)
        self.counts = {"applied": 0, "refused": 0, "parked": 0, "dead": 0, "batches": 0}
        self.db = runtime.engine
        parked_store.ensure_table(runtime.engine)
        self.waiting: int | None = None  # answers parked, as the last batch saw (None: not looked yet)
        self.sweep_seconds, self._next_sweep = sweep_seconds, time.monotonic()
        # each department's door: its answers topic says which department is acting
        self.doors = {settings.topics.answers_of(d): d for d in runtime.reference.departments}
        # and each writer's own intake: it says who wrote, and so what may be claimed
        self.writers = {settings.topics.intake_of(w): w for w in WRITERS}
        super().__init__(settings, settings.topics.intake, group or f"{settings.prefix}engine",
                         also=(*self.writers, *self.doors), **options)

    def probe_database(self) -> None:
        with self.db.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    def stored_position(self, tp: TopicPartition) -> int | None:
        return self.recorder.max_tracking_id(self.source(tp))

    def _command_of(self, record: Any) -> Any:
        """The command a message holds, held to what its topic may say (raises ``DispatchError``)."""
        value = record.value
        if value is not None and len(value) > self.max_message_bytes:
            raise Oversized(f"{len(value)} bytes > {self.max_message_bytes}")
        if not value:
            raise InvalidCommand("empty message")
        command = parse_command(value)
        if record.topic in self.doors:
            command = through_door(command, self.doors[record.topic], record.topic)
        elif record.topic in self.writers:
            command = from_writer(command, self.writers[record.topic], record.topic)
        return command

    def _decode(self, record: Any) -> tuple[Any, DeadLetter | None]:
        try:
            return self._command_of(record), None
        except (InvalidCommand, Forbidden, Oversized) as error:
            return None, DeadLetter.of(record, error.code, str(error))

    def poll_once(self) -> int:
        handled = self._poll_once()
        if self.waiting != 0 and time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + self.sweep_seconds
            self.sweep()
        return handled

    def _poll_once(self) -> int:
        """One poll; ALL its partitions' batches go into one transaction (one ``execute_batch``
        with a ``FencedTrackings`` of every partition's position). If that transaction cannot
        be made (a partition lost on the way, a bug meeting a message), each partition is
        applied on its own, as ``process`` does."""
        batches = self.consumer.poll(timeout_ms=self.poll_timeout_ms, max_records=self.max_poll_records)
        parts = [(tp, records) for tp, records in batches.items() if tp in self.owned and records]
        if len(parts) > 1:
            try:
                self._apply(parts)
            except Rewind as why:
                log.info("rewind", partitions=sorted(tp.partition for tp, _ in parts), reason=str(why))
                for tp, _ in parts:
                    if tp in self.owned:
                        self.seek_stored(tp)
            except TRANSIENT:
                raise
            except Exception:  # noqa: BLE001 - _PartitionLost or a bug: partition by partition
                log.info("merged batch not recorded; applying partition by partition",
                         partitions=sorted(tp.partition for tp, _ in parts))
                for tp, records in parts:
                    self._process_one(tp, records)
        elif parts:
            self._process_one(*parts[0])
        return sum(len(records) for _, records in parts)

    def _process_one(self, tp: TopicPartition, records: list[Any]) -> None:
        if tp not in self.owned:
            return
        try:
            self.process(tp, records)
        except Rewind as why:
            log.info("rewind", partition=tp.partition, reason=str(why))
            self.seek_stored(tp)

    def process(self, tp: TopicPartition, records: list[Any]) -> None:
        try:
            self._apply_partition(tp, records)
        except _PASS_THROUGH:
            raise
        except Exception:  # noqa: BLE001 - a bug meets a message: find it, dead-letter it, go on
            log.exception("batch failed; applying its messages one by one", partition=tp.partition)
            for record in records:
                if tp not in self.owned:
                    return
                try:
                    self._apply_partition(tp, [record])
                except _PASS_THROUGH:
                    raise
                except Exception as error:  # noqa: BLE001
                    letter = DeadLetter.of(record, "internal_error", f"could not be applied: {error}")
                    log.warning("message failed", topic=record.topic, partition=record.partition,
                                offset=record.offset, ticket_id=_ticket_of(record))
                    self._apply_partition(tp, [], dead=[letter], last_offset=record.offset)

    def _apply_partition(self, tp: TopicPartition, records: list[Any], *, dead: list[DeadLetter] | None = None,
                         last_offset: int | None = None) -> None:
        try:
            self._apply([(tp, records)], dead=dead, last_offset=last_offset)
        except _PartitionLost:
            log.info("partition lost mid-batch; not recorded", partition=tp.partition)

    def _apply(self, parts: list[tuple[TopicPartition, list[Any]]], *, dead: list[DeadLetter] | None = None,
               last_offset: int | None = None) -> None:
        """Apply the batches of ``parts`` and record every partition's last offset, all in one
        transaction. Raises ``_PartitionLost`` (nothing recorded) if a partition was lost."""
        expected = {tp: self.owned[tp] for tp, _ in parts}
        lasts = {tp: records[-1].offset if records else last_offset for tp, records in parts}
        dead = list(dead or [])
        commands, origins = [], {}
        for _, records in parts:
            for record in records:
                command, letter = self._decode(record)
                if letter is None:
                    commands.append(command)
                    origins[id(command)] = record
                else:
                    dead.append(letter)

        fences = [FencedTracking(self.source(tp), last, expected[tp]) for tp, last in lasts.items()
                  if last is not None]
        inner = fences[0] if len(fences) == 1 else FencedTrackings.of(fences)
        tracking = WithOutcomes(inner.application_name, inner.notification_id, inner=inner)
        lot = Lot(parked_store.waiting(self.db) if commands else {}, lambda tickets: parked_store.load(self.db, tickets),
                  self._command_of, lambda command: origins[id(command)], now=self.app.clock.now,
                  window=self.report_window)

        def before_record(outcomes: list[Outcome]) -> None:
            lot.settle(outcomes, tracking, dead)
            if not all(self.owns(tp, stored) for tp, stored in expected.items()):
                raise _PartitionLost
            self.dead_letters.send_all(dead)

        started = time.perf_counter()
        try:
            outcomes = self.app.execute_batch(commands, tracking=tracking, before_record=before_record, gate=lot)
        except ConcurrentChange as error:
            raise Rewind(str(error)) from None
        for tp, last in lasts.items():
            self.owned[tp] = last
        self._count(lot, outcomes, dead, time.perf_counter() - started)
        if commands:  # the lot read what is parked (a batch of dead letters only did not)
            self._waiting(lot.total)
        applied_in: dict[int, int] = {}
        for outcome in lot.final(outcomes):
            record = origins.get(id(outcome.command))
            if outcome.ok and record is not None:
                applied_in[record.partition] = applied_in.get(record.partition, 0) + 1
        dead_in: dict[int, int] = {}
        for letter in dead:
            dead_in[letter.partition] = dead_in.get(letter.partition, 0) + 1
        for tp, records in parts:
            log.info("batch applied", topic=tp.topic, partition=tp.partition,
                     first_offset=records[0].offset if records else lasts[tp], last_offset=lasts[tp],
                     messages=len(records), applied=applied_in.get(tp.partition, 0),
                     dead=dead_in.get(tp.partition, 0), lag=self.lag(tp))

    def _count(self, lot: Lot, outcomes: list[Outcome], dead: list[DeadLetter], seconds: float) -> None:
        outcomes = lot.final(outcomes)
        parked_now = sum(lot.is_parked(o) for o in outcomes)
        applied = sum(o.ok for o in outcomes)
        self.counts["applied"] += applied
        self.counts["parked"] += parked_now
        self.counts["refused"] += len(outcomes) - applied - parked_now
        self.counts["dead"] += len(dead)
        self.counts["batches"] += 1
        self.dead_letters.count(dead)
        if self.health is not None:
            self.health.batch_seconds.observe(seconds)
            for outcome in outcomes:
                label = "parked" if lot.is_parked(outcome) else "applied" if outcome.error is None \
                    else outcome.error.code
                self.health.outcomes.labels(label).inc()
            for letter in dead:
                self.health.dead_letters.labels(letter.code).inc()

    def _waiting(self, count: int) -> None:
        """How many answers are parked, as a batch that read them (or a sweep) found."""
        self.waiting = count
        if self.health is not None:
            self.health.parked.set(count)

    def sweep(self) -> int:
        """Try every parked answer again, in a transaction of its own (no partition moves): an
        answer whose dispatch another engine applied is applied now. Returns how many remain."""
        rows = parked_store.load(self.db)
        if not rows:
            self._waiting(0)
            return 0
        lot, commands = Lot.sweeping(rows, self._command_of, now=self.app.clock.now, window=self.report_window)
        tracking = WithOutcomes("parked", 0)
        dead: list[DeadLetter] = []

        def before_record(outcomes: list[Outcome]) -> None:
            lot.settle(outcomes, tracking, dead)
            self.dead_letters.send_all(dead)

        started = time.perf_counter()
        try:
            outcomes = self.app.execute_batch(commands, tracking=tracking, before_record=before_record, gate=lot)
        except ConcurrentChange:  # another engine settled some of them meanwhile: the next sweep sees
            log.info("parked answers changed meanwhile; sweeping again later")
            return len(rows)
        remaining = len(rows) - len(tracking.unparked)
        self._count(lot, outcomes, dead, time.perf_counter() - started)
        self._waiting(remaining)
        if tracking.unparked:
            log.info("parked answers settled", settled=len(tracking.unparked), waiting=remaining)
        return remaining

    def close(self) -> None:
        super().close()
        self.dead_letters.producer.close()


def stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def serve(runtime: Runtime, settings: KafkaSettings, stop: threading.Event, *, group: str | None = None,
          max_poll_records: int = 2000, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
          session_timeout_ms: int = 10_000, metrics_port: int | None = None,
          report_window: timedelta = REPORT_WINDOW, sweep_seconds: float = 10.0) -> dict[str, int]:
    """Run the engine until ``stop`` is set (SIGTERM / SIGINT: the batch in hand is finished and
    its position stored, then the consumer leaves its group at once); return its counts."""
    from consumers.metrics import ProcessHealth
    from dispatch.adapters.kafka import ensure_topics

    health = ProcessHealth("engine")
    if metrics_port is not None:
        health.serve(metrics_port)
    try:  # the port is given back if the start fails (the process tries again)
        ensure_topics(settings, departments=runtime.reference.departments)
        engine = Engine(runtime, settings, group=group, max_poll_records=max_poll_records,
                        max_message_bytes=max_message_bytes, session_timeout_ms=session_timeout_ms, health=health,
                        report_window=report_window, sweep_seconds=sweep_seconds)
        log.info("engine started", group=engine.group, topic=engine.topic, db=runtime.db.display)
        try:
            engine.run(stop)
        finally:
            engine.close()
            log.info("engine stopped", **engine.counts)
    finally:
        health.close()
    return engine.counts


@click.command(name="python -m consumers.engine")
@process_options
@click.option("--group", help="Consumer group [default <prefix>engine].")
@click.option("--max-poll-records", type=int, default=2000, show_default=True)
@click.option("--max-message-bytes", type=int, default=DEFAULT_MAX_MESSAGE_BYTES, show_default=True)
@click.option("--session-timeout-ms", type=int, default=10_000, show_default=True,
              help="How soon the group gives a dead engine's partitions to another.")
@click.option("--report-window", type=click.FloatRange(0.1, 86_400), default=REPORT_WINDOW.total_seconds(),
              show_default=True, help="Seconds a command for a ticket not reported yet waits for the report, "
                                      "before it is dead-lettered ticket_not_found.")
@click.option("--sweep-seconds", type=click.FloatRange(0.1, 3600), default=10.0, show_default=True,
              help="Seconds between retries of the parked commands.")
def main(db: str | None, kafka: str | None, topic_prefix: str | None, log_level: str, metrics_port: int | None,
         group: str | None, max_poll_records: int, max_message_bytes: int, session_timeout_ms: int,
         report_window: float, sweep_seconds: float) -> None:
    """The engine: intake commands → ticket aggregates, until SIGTERM / SIGINT."""
    stop = stop_on_signals()
    run_process(db, kafka, topic_prefix, log_level, lambda runtime, settings: serve(
        runtime, settings, stop, group=group, max_poll_records=max_poll_records,
        max_message_bytes=max_message_bytes, session_timeout_ms=session_timeout_ms, metrics_port=metrics_port,
        report_window=timedelta(seconds=report_window), sweep_seconds=sweep_seconds), stop=stop)


if __name__ == "__main__":
    main()
