"""Topic names, partition counts and idempotent topic creation.

Every name is ``prefix + base``: ``dispatch.intake``, ``dispatch.ticket-events``,
``dispatch.whistle``, ``dispatch.dead-letters`` by default. Tests use a unique
prefix each, so they never see each other's messages. See docs/wire-format.md.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import structlog
from kafka import KafkaAdminClient

from dispatch.errors import DispatchError
from dispatch.kafka.security import KafkaSecurity

__all__ = ["DEFAULT_BOOTSTRAP", "DEFAULT_PREFIX", "KafkaSettings", "Topics", "ensure_topics"]

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
DEFAULT_PREFIX = "dispatch."
_ALREADY_EXISTS = 36  # Kafka error code TOPIC_ALREADY_EXISTS

log = structlog.get_logger("dispatch.kafka")


@dataclass(frozen=True)
class Topics:
    prefix: str = DEFAULT_PREFIX

    @property
    def intake(self) -> str:
        return self.prefix + "intake"

    @property
    def ticket_events(self) -> str:
        return self.prefix + "ticket-events"

    @property
    def whistle(self) -> str:
        return self.prefix + "whistle"

    @property
    def dead_letters(self) -> str:
        return self.prefix + "dead-letters"

    def all(self) -> list[str]:
        return [self.intake, self.ticket_events, self.whistle, self.dead_letters]


def _default_partitions() -> dict[str, int]:
    return {"intake": 6, "ticket-events": 6, "whistle": 3, "dead-letters": 1}


@dataclass(frozen=True)
class KafkaSettings:
    """Where the broker is and what the topics are called (one per deployment)."""

    bootstrap: str = DEFAULT_BOOTSTRAP
    prefix: str = DEFAULT_PREFIX
    partitions: dict[str, int] = field(default_factory=_default_partitions)  # by base name
    replication_factor: int = 1
    security: KafkaSecurity = field(default_factory=KafkaSecurity)  # TLS and SASL (dispatch.kafka.security)

    @property
    def topics(self) -> Topics:
        return Topics(self.prefix)

    @classmethod
    def from_env(cls, bootstrap: str | None = None, prefix: str | None = None, *,
                 security: dict[str, Any] | None = None, **kwargs: Any) -> KafkaSettings:
        """Options win over ``DISPATCH_KAFKA`` / ``DISPATCH_TOPIC_PREFIX`` / ``DISPATCH_KAFKA_*``
        (security), which win over defaults."""
        return cls(
            bootstrap=bootstrap or os.environ.get("DISPATCH_KAFKA") or DEFAULT_BOOTSTRAP,
            prefix=prefix if prefix is not None else os.environ.get("DISPATCH_TOPIC_PREFIX", DEFAULT_PREFIX),
            security=KafkaSecurity.from_env(**(security or {})),
            **kwargs,
        )

    def client_config(self) -> dict[str, Any]:
        """What every kafka-python client of this deployment is given: where, and how securely."""
        return {"bootstrap_servers": self.bootstrap, **self.security.client_config()}

    def partitions_of(self, topic: str) -> int:
        return self.partitions.get(topic.removeprefix(self.prefix), 1)


def ensure_topics(settings: KafkaSettings, *, timeout_ms: int = 30_000) -> list[str]:
    """Create the topics that are missing; return the names created. Safe to repeat,
    also from several processes at once (an "already exists" answer is success)."""
    admin = KafkaAdminClient(**settings.client_config(), client_id="dispatch-admin")
    try:
        existing = set(admin.list_topics())
        wanted = {
            name: {"num_partitions": settings.partitions_of(name), "replication_factor": settings.replication_factor}
            for name in settings.topics.all()
            if name not in existing
        }
        if not wanted:
            return []
        result = admin.create_topics(wanted, timeout_ms=timeout_ms, raise_errors=False)
        for topic in result["topics"]:
            if topic["error_code"] not in (0, _ALREADY_EXISTS):
                raise DispatchError(f"cannot create topic {topic['name']}: {topic.get('error_message') or topic['error_code']}")
        admin.wait_for_topics(list(wanted), timeout_ms=timeout_ms)
        log.info("topics created", topics=sorted(wanted))
        return sorted(wanted)
    finally:
        admin.close()
