"""Shared helpers for the Kafka integration tests (tests/integration/test_kafka_*.py):
a per-test topic prefix and database, engine subprocesses, reading topics to their end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.waiting import wait_for
from tests.integration.servers import REPO_ROOT, drop_postgres_database, fresh_postgres_database, kafka_bootstrap

with warnings.catch_warnings():  # kafka-python's import-time DeprecationWarning
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaConsumer, TopicPartition

    from dispatch.adapters.kafka import KafkaSettings, ensure_topics

__all__ = ["Stack", "drop_topics", "read_topic", "some_progress", "stack", "stored_command_ids", "threads",
           "wait_for"]


@dataclass
class Stack:
    settings: KafkaSettings
    db_url: str
    logs: Path

    @property
    def topics(self) -> Any:
        return self.settings.topics

    def engine_process(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """``python -m consumers.engine`` against this stack, logging JSON to ``<logs>/<name>.log``."""
        return self.process(name, "consumers.engine", "--session-timeout-ms", "6000", *args)

    def process(self, name: str, module: str, *args: str) -> subprocess.Popen[bytes]:
        """``python -m consumers.<module>`` (or ``dispatch``, a CLI command) against this stack,
        logging to ``<logs>/<name>.log``."""
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        if module == "dispatch":
            command, *rest = args
            argv = ["dispatch", "--db", self.db_url, "-v", command, "--kafka", self.settings.bootstrap,
                    "--topic-prefix", self.settings.prefix, *rest]
        else:
            argv = [module, "--db", self.db_url, "--kafka", self.settings.bootstrap,
                    "--topic-prefix", self.settings.prefix, "--log-level", "INFO", *args]
        return subprocess.Popen([sys.executable, "-m", *argv], cwd=REPO_ROOT, stdout=log, stderr=log,
                                env=os.environ | {"PYTHONPATH": str(REPO_ROOT)})

    def send(self, messages: list[tuple[bytes, bytes]], topic: str | None = None) -> None:
        """Produce ``(key, value)`` messages to ``topic`` (intake by default); returns once the broker has them."""
        from dispatch.adapters.kafka import make_producer
        from dispatch.adapters.kafka.load import produce

        producer = make_producer(self.settings)
        try:
            produce(producer, topic or self.topics.intake, messages)
        finally:
            producer.close()

    def log_lines(self, name: str) -> list[dict[str, Any]]:
        lines = []
        for raw in (self.logs / f"{name}.log").read_text(encoding="utf-8").splitlines():
            try:
                lines.append(json.loads(raw))
            except json.JSONDecodeError:
                pass
        return lines


@contextmanager
def stack(tmp_path: Path, name: str, *, partitions: int = 6, postgres: str | None = None,
          bootstrap: str | None = None) -> Iterator[Stack]:
    """A unique topic prefix (topics created) and a fresh PostgreSQL database — on the shared
    test servers, or on a test's own (``postgres``: a URL of the server; ``bootstrap``)."""
    prefix = f"it-{name}-{uuid.uuid4().hex[:8]}."
    settings = KafkaSettings(bootstrap=bootstrap or kafka_bootstrap(), prefix=prefix,
                             partitions={"intake": partitions, "ticket-events": partitions, "whistle": 3,
                                         "dead-letters": 1})
    from dispatch.domain.reference import load_reference

    ensure_topics(settings, departments=load_reference().departments)  # with every department's door
    db_url = fresh_postgres_database(f"kafka_{name}", postgres)
    try:
        yield Stack(settings, db_url, tmp_path)
    finally:
        drop_postgres_database(db_url)
        drop_topics(settings)


def drop_topics(settings: KafkaSettings) -> None:
    """Delete a test's topics (its prefix), so a broker that serves many runs stays small: each
    stack makes ~30 topics (a door per department), and thousands left behind fill a 512 MB heap."""
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(**settings.client_config())
    except KafkaError:
        return  # the broker is gone (a test stopped it): nothing to tidy
    try:
        mine = [t for t in admin.list_topics() if t.startswith(settings.prefix)]
        if mine:
            admin.delete_topics(mine, timeout_ms=30_000)
    except KafkaError:
        pass  # best effort: leaving them costs the broker memory, not the test its result
    finally:
        admin.close()


def kill(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    if process.poll() is None:
        process.send_signal(sig)
    process.wait(timeout=60)


def read_topic(settings: KafkaSettings, topic: str) -> list[Any]:
    """Every message of ``topic`` now, in partition then offset order."""
    consumer = KafkaConsumer(**settings.client_config(), enable_auto_commit=False, group_id=None)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        records: list[Any] = []
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            for batch in consumer.poll(timeout_ms=1000).values():
                records += batch
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        consumer.close()


def some_progress(app: Any, events: int) -> None:
    """Wait until the store holds at least ``events`` events (a stream is under way)."""
    wait_for(lambda: (app.recorder.max_notification_id() or 0) >= events, every=0.05, what="some progress")


def stored_command_ids(app: Any) -> Counter[str]:
    """How many stored events carry each command id (exactly-once means all 1)."""
    counts: Counter[str] = Counter()
    start = 1
    while True:
        notifications = app.recorder.select_notifications(start, 5000)
        if not notifications:
            return counts
        for n in notifications:
            counts[app.mapper.to_domain_event(n).command_id] += 1
        start = notifications[-1].id + 1


def intake_caught_up(stack: Stack, app: Any) -> bool:
    """Every intake partition's stored engine position is at its end offset."""
    consumer = KafkaConsumer(**stack.settings.client_config(), group_id=None)
    try:
        topic = stack.topics.intake
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        ends = consumer.end_offsets(tps)
    finally:
        consumer.close()
    return all(ends[tp] == 0 or (app.recorder.max_tracking_id(f"{topic}:{tp.partition}") or -1) + 1 >= ends[tp]
               for tp in tps)


@contextmanager
def threads(*runners: Any) -> Iterator[threading.Event]:
    """Run each ``runner.run(stop)`` in a thread; stop and close them on exit."""
    stop = threading.Event()
    workers = [threading.Thread(target=r.run, args=(stop,), daemon=True) for r in runners]
    for w in workers:
        w.start()
    try:
        yield stop
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=60)
        for r in runners:
            r.close()
