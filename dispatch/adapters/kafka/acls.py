"""The ACLs a secured cluster needs, per principal (``dispatch kafka-acls``): each process gets
only what its work needs, and each department's desk only its own door.

Principals are ``User:<principal-prefix><name>``: ``dispatch-engine``, ``dispatch-relay``,
``dispatch-projector``, ``dispatch-web`` (the web in Kafka mode: any signed-in actor),
``dispatch-hotline`` (the 12345 platform: hotline actors, on its own intake),
``dispatch-watchdog`` (escalations, on its own intake) and ``dispatch-desk-<slug>`` per
department. Topics are created by an operator with the cluster's rights (``dispatch topics``).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass

from dispatch.adapters.kafka.topics import WRITERS, KafkaSettings, Topics, department_slug

__all__ = ["Grant", "apply", "plan"]


@dataclass(frozen=True)
class Grant:
    principal: str  # User:…
    operation: str  # READ, WRITE, DESCRIBE
    resource: str  # TOPIC, GROUP
    pattern: str  # LITERAL, PREFIXED
    name: str


def plan(topics: Topics, departments: Iterable[str], principal_prefix: str = "dispatch-") -> list[Grant]:
    p = topics.prefix
    grants: list[Grant] = []

    def allow(who: str, operations: tuple[str, ...], resource: str, name: str, pattern: str = "LITERAL") -> None:
        grants.extend(Grant(f"User:{principal_prefix}{who}", op, resource, pattern, name) for op in operations)

    departments = list(departments)
    answers = [topics.answers_of(d) for d in departments]
    allow("engine", ("READ", "DESCRIBE"), "TOPIC", topics.intake)
    for writer in WRITERS:
        allow("engine", ("READ", "DESCRIBE"), "TOPIC", topics.intake_of(writer))
        allow(writer, ("WRITE", "DESCRIBE"), "TOPIC", topics.intake_of(writer))
    for topic in answers:
        allow("engine", ("READ", "DESCRIBE"), "TOPIC", topic)
    allow("engine", ("WRITE", "DESCRIBE"), "TOPIC", topics.dead_letters)
    allow("engine", ("READ",), "GROUP", f"{p}engine")
    allow("relay", ("WRITE", "DESCRIBE"), "TOPIC", topics.ticket_events)
    allow("relay", ("WRITE", "DESCRIBE"), "TOPIC", topics.whistle, "PREFIXED")  # whistle and whistle.<slug>
    allow("projector", ("READ", "DESCRIBE"), "TOPIC", topics.ticket_events)
    allow("projector", ("WRITE", "DESCRIBE"), "TOPIC", topics.dead_letters)
    allow("projector", ("READ",), "GROUP", f"{p}projector")
    allow("web", ("WRITE", "DESCRIBE"), "TOPIC", topics.intake)
    for department in departments:
        slug = department_slug(department)
        allow(f"desk-{slug}", ("READ", "DESCRIBE"), "TOPIC", topics.whistle_of(department))
        allow(f"desk-{slug}", ("WRITE", "DESCRIBE"), "TOPIC", topics.answers_of(department))
        allow(f"desk-{slug}", ("READ",), "GROUP", f"{p}department.{slug}")
    return grants


def apply(settings: KafkaSettings, grants: list[Grant]) -> int:
    """Create the grants with the admin client (the settings' principal needs Alter on the cluster)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka.admin import (ACL, ACLOperation, ACLPermissionType, ACLResourcePatternType, KafkaAdminClient,
                                 ResourcePattern, ResourceType)
    from dispatch.domain.errors import DispatchError

    admin = KafkaAdminClient(**settings.client_config(), client_id="dispatch-acls")
    try:
        made = admin.create_acls([
            ACL(g.principal, "*", ACLOperation[g.operation], ACLPermissionType.ALLOW,
                ResourcePattern(ResourceType[g.resource], g.name, ACLResourcePatternType[g.pattern]))
            for g in grants])
    finally:
        admin.close()
    if made["failed"]:
        acl, error = made["failed"][0]
        raise DispatchError(f"the broker refused {len(made['failed'])} ACL(s), e.g. {acl.principal} "
                            f"{acl.operation.name}: {error}")
    return len(made["succeeded"])
