"""The Kafka door with authentication, on the real broker's SASL_PLAINTEXT listener behind KRaft's
StandardAuthorizer (scripts/kafka-local): the lifecycle through clients that sign in with
SCRAM-SHA-512 and hold only the ACLs their work needs; the broker refusing a principal what its
ACLs do not allow, and a wrong password; PLAIN for a client that uses it."""

from __future__ import annotations

import json
import secrets
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from dispatch.aggregates import ticket_id_for
from dispatch.bootstrap import bootstrap
from tests.integration.kafka_support import drop_topics, read_topic, threads, wait_for
from tests.integration.servers import drop_postgres_database, fresh_postgres_database, kafka_bootstrap, \
    kafka_sasl_bootstrap

with warnings.catch_warnings():  # kafka-python's import-time DeprecationWarning
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                             KafkaAdminClient, ResourcePattern, ResourcePatternFilter, ResourceType, ScramMechanism,
                             UserScramCredentialUpsertion)
    from kafka.errors import KafkaError, TopicAuthorizationFailedError

    from consumers.engine import Engine
    from consumers.projector import Projector
    from consumers.relay import Relay
    from dispatch.adapters.kafka import KafkaSettings, ensure_topics
    from dispatch.adapters.kafka.acls import apply, plan
    from dispatch.adapters.kafka.security import KafkaSecurity
    from dispatch.domain.reference import load_reference
    from dispatch.projections import list_tickets

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=8)))
ALL, READ, WRITE, DESCRIBE = ACLOperation.ALL, ACLOperation.READ, ACLOperation.WRITE, ACLOperation.DESCRIBE


def _sasl() -> str:
    address = kafka_sasl_bootstrap()
    if address is None:
        pytest.skip("the test broker has no SASL listener named (DISPATCH_TEST_KAFKA_SASL)")
    return address


_DOORS: list[Door] = []


@pytest.fixture(autouse=True)
def _tidy() -> Iterator[None]:
    """Each test's topics, principals and ACLs go when it ends."""
    yield
    while _DOORS:
        door = _DOORS.pop()
        door.close()


class Door:
    """A topic prefix on the shared broker, principals made for it, and their ACLs."""

    def close(self) -> None:
        try:
            if self.principals:
                self.admin.delete_acls([_acl_filter(p) for p in self.principals])
                self.admin.delete_acls([_acl_filter("User:plain-client")])  # the PLAIN test's
        except KafkaError:
            pass
        finally:
            self.admin.close()
        drop_topics(self.plain)

    def wait_for_acls(self, principal: str, count: int) -> None:
        """The broker answers DescribeAcls from its authorizer: once it lists them, they hold."""
        wait_for(lambda: len(self.admin.describe_acls(_acl_filter(principal))[0]) >= count, timeout=30,
                 what=f"the broker to hold {principal}'s ACLs")

    def __init__(self, name: str):
        self.prefix = f"it-{name}-{uuid.uuid4().hex[:8]}."
        self.plain = KafkaSettings(bootstrap=kafka_bootstrap(), prefix=self.prefix)
        self.sasl = _sasl()
        self.admin = KafkaAdminClient(**self.plain.client_config())  # PLAINTEXT: the broker's super user
        self.principals: list[str] = []
        _DOORS.append(self)
        ensure_topics(self.plain, departments=load_reference().departments)

    def user(self, role: str) -> KafkaSettings:
        """A SCRAM-SHA-512 user ``<prefix><role>`` (no ACLs yet), as the settings it signs in with."""
        user, password = f"{self.prefix}{role}", secrets.token_urlsafe(16)
        self.principals.append(f"User:{user}")
        assert self.admin.alter_user_scram_credentials(
            [UserScramCredentialUpsertion(user, ScramMechanism.SCRAM_SHA_512, password)]) == {user: None}
        security = KafkaSecurity(protocol="SASL_PLAINTEXT", mechanism="SCRAM-SHA-512", username=user, password=password)
        return KafkaSettings(bootstrap=self.sasl, prefix=self.prefix, security=security.checked())

    def planned(self, *roles: str) -> list[KafkaSettings]:
        """SCRAM users for ``roles`` holding exactly what `dispatch kafka-acls` plans for them."""
        users = [self.user(role) for role in roles]
        grants = plan(self.plain.topics, load_reference().departments, principal_prefix=self.prefix)
        self.principals += sorted({g.principal for g in grants} - set(self.principals))
        assert apply(self.plain, grants) == len(grants)
        for role in roles:
            who = f"User:{self.prefix}{role}"
            self.wait_for_acls(who, sum(g.principal == who for g in grants))
        return users

    def principal(self, role: str, acls: list[tuple[ResourceType, str, ACLResourcePatternType, ACLOperation]]
                  ) -> KafkaSettings:
        """A SCRAM-SHA-512 user with these ACLs (resource names relative to the prefix), as settings."""
        settings = self.user(role)
        user = settings.security.username
        made = self.admin.create_acls([ACL(f"User:{user}", "*", op, ACLPermissionType.ALLOW,
                                           ResourcePattern(kind, self.prefix + name, pattern))
                                       for kind, name, pattern, op in acls])
        assert not made["failed"], made["failed"]
        self.wait_for_acls(f"User:{user}", len(acls))
        return settings


TOPICS, GROUPS = ResourceType.TOPIC, ResourceType.GROUP
PREFIXED, LITERAL = ACLResourcePatternType.PREFIXED, ACLResourcePatternType.LITERAL


def _acl_filter(principal: str) -> Any:
    return ACLFilter(principal, "*", ACLOperation.ANY, ACLPermissionType.ANY,
                     ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY))


def _service(door: Door, role: str) -> KafkaSettings:
    """A dispatch process: every topic and consumer group of the deployment (its prefix)."""
    return door.principal(role, [(TOPICS, "", PREFIXED, ALL), (GROUPS, "", PREFIXED, ALL)])


@contextmanager
def _database(name: str) -> Iterator[str]:
    url = fresh_postgres_database(name)
    try:
        yield url
    finally:
        drop_postgres_database(url)


def _send(settings: KafkaSettings, topic: str, key: str, body: dict[str, Any]) -> None:
    producer = KafkaProducer(**settings.client_config(), acks="all", max_block_ms=20_000)
    try:
        producer.send(topic, key=key.encode(), value=json.dumps(body, ensure_ascii=False).encode()).get(timeout=30)
    finally:
        producer.close()


def test_the_lifecycle_runs_through_clients_that_sign_in_with_scram(tmp_path: Any) -> None:
    door = Door("scram")
    engine_s, relay_s, projector_s = _service(door, "engine"), _service(door, "relay"), _service(door, "projector")
    # the 12345 platform may write commands to intake, and nothing else
    hotline = door.principal("hotline", [(TOPICS, "intake", LITERAL, WRITE), (TOPICS, "intake", LITERAL, DESCRIBE)])
    with _database("kafka_scram") as db:
        runtimes = [bootstrap(db) for _ in range(3)]
        try:
            with threads(Engine(runtimes[0], engine_s), Relay(runtimes[1], relay_s), Projector(runtimes[2], projector_s)):
                centre, desk = {"role": "centre", "id": "c-1"}, {"role": "department", "id": "cg", "department": "chengguan"}
                steps = [{"type": "report", "actor": {"role": "hotline", "id": "op-1"}, "grid": "cj-shuiku-g01",
                          "category": "city_appearance", "channel": "hotline", "description": "路边垃圾",
                          "external_ref": "12345-9"},
                         {"type": "accept", "actor": centre}, {"type": "dispatch", "actor": centre},
                         {"type": "acknowledge", "actor": desk, "department": "chengguan"},
                         {"type": "handle", "actor": desk, "department": "chengguan", "result": "已清运"},
                         {"type": "feedback", "actor": centre, "message": "已回访"},
                         {"type": "evaluate", "actor": {"role": "resident", "id": "r"}, "satisfaction": "satisfied",
                          "resolved": True},
                         {"type": "close", "actor": centre}]
                ticket = str(ticket_id_for(external_ref="12345-9", channel="hotline", command_id="scram-0"))
                for n, step in enumerate(steps):
                    body = step | {"command_id": f"scram-{n}", "occurred_at": (T0 + timedelta(minutes=20 * n)).isoformat()}
                    if n:
                        body["ticket_id"] = ticket
                    _send(hotline, door.plain.topics.intake, ticket, body)
                wait_for(lambda: list_tickets(runtimes[2].engine, status="closed"), timeout=120,
                         what="the ticket closed in the read model the authenticated projector fills")
            types = [json.loads(r.value)["type"] for r in read_topic(door.plain, door.plain.topics.ticket_events)]
            assert types == ["Reported", "Accepted", "Dispatched", "Acknowledged", "Handled", "FeedbackGiven",
                             "Evaluated", "Closed"]
        finally:
            for runtime in runtimes:
                runtime.close()


def test_the_broker_refuses_what_a_principals_acls_do_not_allow(tmp_path: Any) -> None:
    door = Door("acl")
    hotline = door.principal("hotline", [(TOPICS, "intake", LITERAL, WRITE), (TOPICS, "intake", LITERAL, DESCRIBE)])
    _send(hotline, door.plain.topics.intake, "k", {"type": "report"})  # allowed (the engine would judge it)
    with pytest.raises(TopicAuthorizationFailedError):
        _send(hotline, door.plain.topics.ticket_events, "k", {"type": "Forged"})
    # nor read it: the messages are there, and this principal is shown neither the topic nor one of them
    _send(door.plain, door.plain.topics.ticket_events, "k", {"type": "Reported"})
    reader = KafkaConsumer(**hotline.client_config(), group_id=None, enable_auto_commit=False)
    try:
        assert not reader.partitions_for_topic(door.plain.topics.ticket_events)
        partition = TopicPartition(door.plain.topics.ticket_events, 0)
        reader.assign([partition])
        seen = []
        for _ in range(5):
            for batch in reader.poll(timeout_ms=1_000).values():
                seen += batch
        assert seen == []
    finally:
        reader.close()
    # a wrong password does not get in at all
    wrong = replace(hotline, security=replace(hotline.security, password="not the password"))
    with pytest.raises(KafkaError):
        KafkaProducer(**wrong.client_config(), max_block_ms=5_000, bootstrap_timeout_ms=5_000)
    assert [json.loads(r.value)["type"] for r in read_topic(door.plain, door.plain.topics.ticket_events)] == \
        ["Reported"]  # the forged event never got in


def test_a_client_may_sign_in_with_plain(tmp_path: Any) -> None:
    door = Door("plain")
    assert not door.admin.create_acls([ACL("User:plain-client", "*", op, ACLPermissionType.ALLOW,
                                           ResourcePattern(TOPICS, door.plain.topics.intake, LITERAL))
                                       for op in (WRITE, DESCRIBE)])["failed"]
    door.wait_for_acls("User:plain-client", 2)
    plain = KafkaSettings(bootstrap=door.sasl, prefix=door.prefix, security=KafkaSecurity.from_env(
        {}, protocol="SASL_PLAINTEXT", mechanism="PLAIN", username="plain-client", password="plain-client-secret"))

    def sent() -> bool:  # the ACL takes effect once the broker has replayed it (a moment)
        try:
            _send(plain, door.plain.topics.intake, "k", {"type": "report", "command_id": "plain-1"})
        except KafkaError as error:
            assert "AuthorizationFailed" in str(error), error
            return False
        return True

    wait_for(sent, timeout=30, what="the PLAIN client's message to be taken")
    assert [r.key for r in read_topic(door.plain, door.plain.topics.intake)] == [b"k"]


def test_a_department_reads_only_its_calls_writes_only_its_answers_and_cannot_claim_another(tmp_path: Any) -> None:
    from consumers.department import DepartmentDesk

    door = Door("desk")
    topics = door.plain.topics
    # the principals hold exactly what `dispatch kafka-acls` plans for them, and nothing else
    engine_s, relay_s, desk = door.planned("engine", "relay", "desk-chengguan")
    with _database("kafka_desk") as db:
        runtimes = [bootstrap(db) for _ in range(2)]
        try:
            with threads(Engine(runtimes[0], engine_s), Relay(runtimes[1], relay_s)):
                centre = {"role": "centre", "id": "c-1"}
                ticket = str(ticket_id_for(external_ref="12345-7", channel="hotline", command_id="desk-0"))
                for n, step in enumerate([
                        {"type": "report", "actor": {"role": "hotline", "id": "op"}, "grid": "cj-shuiku-g01",
                         "category": "city_appearance", "channel": "hotline", "description": "垃圾",
                         "external_ref": "12345-7"},
                        {"type": "accept", "actor": centre, "ticket_id": ticket},
                        {"type": "dispatch", "actor": centre, "ticket_id": ticket}]):  # 城管 leads
                    _send(door.plain, topics.intake, ticket, step | {
                        "command_id": f"desk-{n}", "occurred_at": (T0 + timedelta(minutes=n)).isoformat()})
                chengguan = DepartmentDesk(desk, "chengguan")
                calls = wait_for(lambda: chengguan.inbox(), timeout=60, what="城管's call on its own door")
                assert [(str(c["ticket_id"]), c["role"]) for c in calls] == [(ticket, "lead")]
                # another department's calls: the broker does not even show this principal the topic
                with pytest.raises(RuntimeError, match="may not read it"):
                    DepartmentDesk(desk, "huanwei").inbox()
                # nor may it write another department's answers
                answer = {"type": "acknowledge", "actor": {"role": "department", "id": "cg-desk"},
                          "ticket_id": ticket, "occurred_at": (T0 + timedelta(minutes=10)).isoformat()}
                with pytest.raises(TopicAuthorizationFailedError):
                    _send(desk, topics.answers_of("huanwei"), ticket,
                          answer | {"department": "huanwei", "command_id": "cg-as-hw-1"})
                # on its own door, a body claiming 环卫 is dead-lettered; its own answer is applied as 城管
                _send(desk, topics.answers_of("chengguan"), ticket,
                      answer | {"department": "huanwei", "command_id": "cg-as-hw-2"})
                _send(desk, topics.answers_of("chengguan"), ticket,
                      answer | {"department": "chengguan", "command_id": "cg-ack"})

                def acknowledged() -> Any:
                    for r in read_topic(door.plain, topics.ticket_events):
                        event = json.loads(r.value)
                        if event["type"] == "Acknowledged":
                            return event
                    return None

                event = wait_for(acknowledged, timeout=60, what="城管's acknowledgement")
                assert event["data"]["department"] == "chengguan"
                assert event["data"]["actor"]["department"] == "chengguan"  # taken from the door
                letters = wait_for(lambda: read_topic(door.plain, topics.dead_letters), timeout=60,
                                   what="the forged answer's dead letter")
                codes = [dict(r.headers).get("dispatch.error.code") for r in letters]
                assert codes == [b"forged_department"], codes
        finally:
            for runtime in runtimes:
                runtime.close()


def test_the_hotline_and_the_watchdog_write_under_their_own_principals_and_claim_only_their_own(tmp_path: Any) -> None:
    from consumers.escalator import kafka_submit
    from dispatch.service.watchdog import WATCHDOG_ACTOR

    door = Door("writers")
    topics = door.plain.topics
    engine_s, hotline, watchdog = door.planned("engine", "hotline", "watchdog")
    with _database("kafka_writers") as db:
        runtime = bootstrap(db)
        try:
            with threads(Engine(runtime, engine_s)):
                ticket = str(ticket_id_for(external_ref="12345-5", channel="hotline", command_id="w-0"))
                report = {"type": "report", "actor": {"role": "hotline", "id": "op"}, "grid": "cj-shuiku-g01",
                          "category": "city_appearance", "channel": "hotline", "description": "噪音扰民",
                          "external_ref": "12345-5", "command_id": "w-0", "occurred_at": T0.isoformat()}
                _send(hotline, topics.intake_of("hotline"), ticket, report)  # its own intake: applied
                with pytest.raises(TopicAuthorizationFailedError):  # the web's intake is not the hotline's
                    _send(hotline, topics.intake, ticket, report | {"command_id": "w-x"})
                # the hotline claiming to be the grid centre, and a watchdog message that is no escalation
                accept = {"type": "accept", "actor": {"role": "centre", "id": "c"}, "ticket_id": ticket,
                          "command_id": "w-1", "occurred_at": (T0 + timedelta(minutes=1)).isoformat()}
                _send(hotline, topics.intake_of("hotline"), ticket, accept)
                _send(watchdog, topics.intake_of("watchdog"), ticket, accept | {"command_id": "w-2"})
                # the watchdog's own escalation, sent as `dispatch watchdog --kafka` sends it
                from dispatch.domain.commands import Escalate

                sent = kafka_submit(watchdog)([Escalate(ticket_id=uuid.UUID(ticket), actor=WATCHDOG_ACTOR, command_id="w-3",
                                                        occurred_at=(T0 + timedelta(hours=2)).isoformat(),
                                                        deadline="accept", rung=1)])
                assert [s.error for s in sent] == [None]
                def forged() -> set[str]:
                    return {json.loads(r.value)["command_id"] for r in read_topic(door.plain, topics.dead_letters)
                            if dict(r.headers).get("dispatch.error.code") == b"forged_actor"}

                wait_for(lambda: len(forged()) >= 2, timeout=60, what="two dead letters")
                assert forged() == {"w-1", "w-2"}  # not the report, not the watchdog's escalation
                events = wait_for(lambda: [e for e in runtime.app.events.get(ticket_id_for(
                    external_ref="12345-5", channel="hotline"))] or None, timeout=60, what="the ticket")
                assert type(events[0]).__name__ == "Reported"
        finally:
            runtime.close()


_CENTRE = {"role": "centre", "id": "c-1"}


def _dispatched_to_chengguan(door: Door, ref: str, tag: str) -> str:
    """A hotline report, accepted and dispatched to 城管 alone, sent on intake; its ticket id."""
    ticket = str(ticket_id_for(external_ref=ref, channel="hotline"))
    for n, step in enumerate([
            {"type": "report", "actor": {"role": "hotline", "id": "op"}, "grid": "cj-shuiku-g01",
             "category": "city_appearance", "channel": "hotline", "description": "垃圾", "external_ref": ref},
            {"type": "accept", "actor": _CENTRE, "ticket_id": ticket},
            {"type": "dispatch", "actor": _CENTRE, "ticket_id": ticket, "lead": "chengguan", "cooperating": []}]):
        _send(door.plain, door.plain.topics.intake, ticket, step | {
            "command_id": f"{tag}-{n}", "occurred_at": (T0 + timedelta(minutes=n)).isoformat()})
    return ticket


def test_an_answer_that_arrives_before_its_dispatch_waits_for_it_and_is_then_applied(tmp_path: Any) -> None:
    from dispatch.adapters import parked_store
    from dispatch.domain.commands import Acknowledge, Handle

    from consumers.department import DepartmentDesk

    door = Door("park")
    topics = door.plain.topics
    engine_s, huanwei_s = door.planned("engine", "desk-huanwei")
    with _database("kafka_park") as db:
        runtime = bootstrap(db)
        try:
            # no sweeps: the dispatch itself must wake the answer
            with threads(Engine(runtime, engine_s, sweep_seconds=3600)):
                centre, ticket = _CENTRE, _dispatched_to_chengguan(door, "12345-8", "park")
                _send(door.plain, topics.answers_of("chengguan"), ticket, {
                    "type": "reject", "actor": {"role": "department", "id": "cg"}, "department": "chengguan",
                    "ticket_id": ticket, "dispatch_no": 1, "reason": "不属于本部门", "command_id": "park-3",
                    "occurred_at": (T0 + timedelta(minutes=5)).isoformat()})
                wait_for(lambda: runtime.app.get_ticket(uuid.UUID(ticket)).status == "awaiting_redispatch",
                         timeout=60, what="城管's rejection")
                # 环卫's desk answers dispatch 2 (it signs in as itself, on its own door) before the centre's
                # redispatch reaches the engine
                desk = DepartmentDesk(huanwei_s, "huanwei")
                actor = {"role": "department", "id": "hw-desk", "department": "huanwei"}
                desk.send([Acknowledge(ticket_id=uuid.UUID(ticket), actor=actor, department="huanwei", dispatch_no=2,
                                       command_id="hw-ack", occurred_at=T0 + timedelta(minutes=30)),
                           Handle(ticket_id=uuid.UUID(ticket), actor=actor, department="huanwei", dispatch_no=2,
                                  command_id="hw-handle", result="已清运", occurred_at=T0 + timedelta(minutes=90))])
                desk.close()
                waiting = wait_for(lambda: len(parked_store.load(runtime.engine)) == 2 and parked_store.load(runtime.engine),
                                   timeout=60, what="both answers parked")
                assert [(p.dispatch_no, p.topic) for p in waiting] == [(2, topics.answers_of("huanwei"))] * 2
                _send(door.plain, topics.intake, ticket, {
                    "type": "dispatch", "actor": centre, "ticket_id": ticket, "lead": "huanwei", "cooperating": [],
                    "reason": "改派", "command_id": "park-4", "occurred_at": (T0 + timedelta(minutes=10)).isoformat()})
                wait_for(lambda: runtime.app.get_ticket(uuid.UUID(ticket)).status == "handled", timeout=60,
                         what="the parked answers applied after the redispatch")
            events = [type(e).__name__ for e in runtime.app.events.get(uuid.UUID(ticket))]
            assert events == ["Reported", "Accepted", "Dispatched", "Rejected", "Redispatched", "Acknowledged",
                              "Handled"]
            assert parked_store.load(runtime.engine) == []
            assert read_topic(door.plain, topics.dead_letters) == []
        finally:
            runtime.close()


def test_an_engine_sweeps_in_answers_whose_dispatch_another_engine_applied(tmp_path: Any) -> None:
    from dispatch.adapters import parked_store
    from dispatch.domain.commands import Acknowledge, parse_command

    door = Door("sweep")
    topics = door.plain.topics
    with _database("kafka_sweep") as db:
        runtime, other = bootstrap(db), bootstrap(db)
        try:
            with threads(Engine(runtime, door.plain, sweep_seconds=1)):
                centre, ticket = _CENTRE, _dispatched_to_chengguan(door, "12345-6", "sweep")
                wait_for(lambda: runtime.app.get_ticket(uuid.UUID(ticket)).status == "dispatched", timeout=60,
                         what="the first dispatch")
                # 城管 answers a second dispatch that has not happened yet: it waits
                _send(door.plain, topics.answers_of("chengguan"), ticket, json.loads(Acknowledge(
                    ticket_id=uuid.UUID(ticket), actor={"role": "department", "id": "cg"}, department="chengguan",
                    dispatch_no=2, command_id="sweep-ack", occurred_at=T0 + timedelta(minutes=40)).model_dump_json()))
                wait_for(lambda: parked_store.load(runtime.engine), timeout=60, what="the answer parked")
                # another engine process takes 城管's rejection and the redispatch to 城管: this one never
                # sees them, so nothing here wakes the answer but its sweep
                other.app.execute_batch([parse_command(body | {"ticket_id": ticket}) for body in [
                    {"type": "reject", "actor": {"role": "department", "id": "cg", "department": "chengguan"},
                     "department": "chengguan", "reason": "需要重派", "command_id": "sweep-3",
                     "occurred_at": (T0 + timedelta(minutes=10)).isoformat()},
                    {"type": "dispatch", "actor": centre, "lead": "chengguan", "cooperating": [],
                     "command_id": "sweep-4", "occurred_at": (T0 + timedelta(minutes=20)).isoformat()}]])
                wait_for(lambda: not parked_store.load(runtime.engine), timeout=60, what="the sweep to take the answer")
            events = [type(e).__name__ for e in runtime.app.events.get(uuid.UUID(ticket))]
            assert events[-2:] == ["Redispatched", "Acknowledged"]
            assert read_topic(door.plain, topics.dead_letters) == []
        finally:
            runtime.close()
            other.close()
