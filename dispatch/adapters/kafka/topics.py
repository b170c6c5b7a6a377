"""Topic names, partition counts and idempotent topic creation.

Every name is ``prefix + base``: ``dispatch.intake``, ``dispatch.ticket-events``,
``dispatch.whistle``, ``dispatch.dead-letters`` by default, and a door per department:
``dispatch.whistle.<slug>`` (its calls: the only whistle topic its principal may read) and
``dispatch.answers.<slug>`` (its answers: the only topic it may write), and the intakes of the
writers that are not the web: ``dispatch.intake.hotline``, ``dispatch.intake.watchdog``. Kafka's ACLs are per
topic, not per key, hence a topic each. ``slug`` (``department_slug``) makes a department id —
which may be Chinese — a valid ASCII topic and principal name. Tests use a unique prefix each,
so they never see each other's messages. See docs/wire-format.md.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dispatch.adapters.logs import get_logger
from kafka import KafkaAdminClient

from dispatch.adapters.kafka.security import KafkaSecurity
from dispatch.domain.errors import DispatchError

__all__ = ["DEFAULT_BOOTSTRAP", "DEFAULT_PREFIX", "WRITERS", "KafkaSettings", "Topics", "department_slug", "ensure_topics"]

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
DEFAULT_PREFIX = "dispatch."
_ALREADY_EXISTS = 36  # Kafka error code TOPIC_ALREADY_EXISTS

log = get_logger("dispatch.kafka")


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

    def intake_of(self, writer: str) -> str:
        """A writer's own intake (``hotline``: the 12345 platform; ``watchdog``): the engine holds a
        message there to what that writer may claim (``WRITERS``)."""
        return f"{self.prefix}intake.{writer}"

    def all(self) -> list[str]:
        return [self.intake, self.ticket_events, self.whistle, self.dead_letters,
                *(self.intake_of(w) for w in WRITERS)]

    def whistle_of(self, department: str) -> str:
        """The department's own calls (one partition: in order)."""
        return f"{self.prefix}whistle.{department_slug(department)}"

    def answers_of(self, department: str) -> str:
        """The department's answers to its calls; the engine takes the department from this name."""
        return f"{self.prefix}answers.{department_slug(department)}"

    def doors(self, departments: Iterable[str]) -> list[str]:
        return [t for d in departments for t in (self.whistle_of(d), self.answers_of(d))]


_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,99}")


def department_slug(department: str) -> str:
    """A department id as an ASCII topic and principal name: itself when it is lower-case ASCII
    letters, digits and dashes (``chengguan``); else ``xn--`` and its Punycode (RFC 3492, the
    encoding of international domain names: ``城管`` → ``xn--uisq74f``), when that is; else
    ``x-`` and the hex of its UTF-8. Distinct ids get distinct names."""
    if _SLUG.fullmatch(department):
        return department
    coded = "xn--" + department.encode("punycode").decode("ascii")
    if _SLUG.fullmatch(coded) and len(coded) <= 100:
        return coded
    return "x-" + department.encode("utf-8").hex()[:96]


WRITERS = ("hotline", "watchdog")  # writers with an intake of their own (docs/wire-format.md)


def _default_partitions() -> dict[str, int]:
    return {"intake": 6, "ticket-events": 6, "whistle": 3, "dead-letters": 1, "intake.hotline": 3,
            "intake.watchdog": 1}


@dataclass(frozen=True)
class KafkaSettings:
    """Where the broker is and what the topics are called (one per deployment)."""

    bootstrap: str = DEFAULT_BOOTSTRAP
    prefix: str = DEFAULT_PREFIX
    partitions: dict[str, int] = field(default_factory=_default_partitions)  # by base name
    replication_factor: int = 1
    security: KafkaSecurity = field(default_factory=KafkaSecurity)  # TLS and SASL (dispatch.adapters.kafka.security)

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


def ensure_topics(settings: KafkaSettings, *, departments: Iterable[str] = (), only: Iterable[str] | None = None,
                  timeout_ms: int = 30_000) -> list[str]:
    """Create the topics that are missing (with each department's door; ``only``: just these);
    return the names created. Safe to repeat, also from several processes at once ("already
    exists" is success)."""
    admin = KafkaAdminClient(**settings.client_config(), client_id="dispatch-admin")
    try:
        existing = set(admin.list_topics())
        wanted = {
            name: {"num_partitions": settings.partitions_of(name), "replication_factor": settings.replication_factor}
            for name in (list(only) if only is not None
                         else [*settings.topics.all(), *settings.topics.doors(departments)])
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
