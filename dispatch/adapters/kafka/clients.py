"""kafka-python clients configured the one way dispatch uses them.

Producers are idempotent (``enable_idempotence=True``, ``acks="all"``): a retried send
never duplicates a message in the log. Consumers never auto-commit: each consumer
keeps its positions in the database, in the transaction of the work they caused.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dispatch.adapters.logs import get_logger
from kafka import KafkaConsumer, KafkaProducer

from dispatch.adapters.kafka.topics import KafkaSettings
from dispatch.adapters.kafka.wire import DeadLetter

__all__ = ["FETCH_MAX_WAIT_MS", "DeadLetterSender", "broker_answers", "make_consumer", "make_producer"]

log = get_logger("dispatch.kafka")

# How long the broker may hold a fetch that has no data yet. kafka-python sends one fetch
# per broker at a time, for the partitions that have nothing buffered; a partition that
# gets data while such a fetch is held waits for it, so kafka-python's default (500 ms)
# is added to the latency of a quiet-ish stream. Benchmarks give their floors the same.
FETCH_MAX_WAIT_MS = 50


def broker_answers(settings: KafkaSettings) -> bool:
    """Whether a bootstrap broker accepts a connection now (a cheap probe: no Kafka request)."""
    import socket

    servers = settings.bootstrap
    for server in (servers.split(",") if isinstance(servers, str) else servers):
        host, _, port = server.strip().rpartition(":")
        try:
            with socket.create_connection((host.strip("[]") or "localhost", int(port or 9092)), timeout=2):
                return True
        except (OSError, ValueError):
            continue
    return False


def make_producer(settings: KafkaSettings, **overrides: Any) -> KafkaProducer:
    config: dict[str, Any] = {
        **settings.client_config(),
        "client_id": "dispatch",
        "enable_idempotence": True,
        "acks": "all",
        "linger_ms": 5,
        "batch_size": 256 * 1024,
        "max_request_size": 4 * 1024 * 1024,
        "compression_type": None,
    }
    return KafkaProducer(**(config | overrides))


def make_consumer(settings: KafkaSettings, group: str | None, **overrides: Any) -> KafkaConsumer:
    config: dict[str, Any] = {
        **settings.client_config(),
        "client_id": "dispatch",
        "group_id": group,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_poll_records": 2000,
        "fetch_max_wait_ms": FETCH_MAX_WAIT_MS,
        "isolation_level": "read_committed",
        # A dead member's partitions move after 10 s (Kafka's default is 45 s).
        "session_timeout_ms": 10_000,
        "heartbeat_interval_ms": 2_000,
        # Topics and partitions made after the consumer joined are seen within 10 s (default 5 min):
        # an engine started right after `dispatch topics` must not sit on an empty assignment.
        "metadata_max_age_ms": 10_000,
    }
    return KafkaConsumer(**(config | overrides))


class DeadLetterSender:
    """Sends dead letters and waits until the broker has them (``send_all``)."""

    def __init__(self, producer: KafkaProducer, topic: str, *, flush_timeout: float = 30.0):
        self.producer, self.topic, self.flush_timeout = producer, topic, flush_timeout
        self.counts: dict[str, int] = {}

    def send_all(self, letters: Iterable[DeadLetter]) -> int:
        """Produce every letter, flush, then raise if any send failed. Returns how many."""
        futures = []
        for letter in letters:
            futures.append(
                self.producer.send(self.topic, key=letter.key, value=letter.value, headers=letter.kafka_headers())
            )
            log.warning(
                "dead letter", code=letter.code, reason=letter.message, topic=letter.topic,
                partition=letter.partition, offset=letter.offset, ticket_id=letter.ticket_id,
            )
        if futures:
            self.producer.flush(timeout=self.flush_timeout)
            for future in futures:
                future.get(timeout=self.flush_timeout)  # raises the send's error, if any
        return len(futures)

    def count(self, letters: Iterable[DeadLetter]) -> None:
        """Count letters once they are safe (after the batch is recorded)."""
        for letter in letters:
            self.counts[letter.code] = self.counts.get(letter.code, 0) + 1
