"""Stories through the real broker: an outside client drives a ticket to Closed; departments answer their calls."""

from __future__ import annotations

import json
import warnings
from datetime import datetime, timedelta, timezone

import pytest

from dispatch.bootstrap import bootstrap
from tests.integration.kafka_support import read_topic, stack, threads, wait_for

with warnings.catch_warnings():  # kafka-python's import-time DeprecationWarning
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaProducer

    from consumers.department import AutoPolicy, DepartmentDesk
    from consumers.engine import Engine
    from consumers.projector import Projector
    from consumers.relay import Relay
    from dispatch.adapters.kafka import make_producer
    from dispatch.adapters.kafka.load import lifecycle_messages, produce
    from dispatch.projections import list_tickets

pytestmark = pytest.mark.integration
CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=CST)


def _at(minutes: int) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


def _ticket_events(s, ticket_id: str) -> list[str]:
    return [json.loads(r.value)["type"] for r in read_topic(s.settings, s.topics.ticket_events)
            if r.key == ticket_id.encode()]


def test_a_lifecycle_sent_by_an_outside_client_ends_closed_and_on_the_ticket_events_topic(tmp_path):
    with stack(tmp_path, "lifecycle") as s:
        engine_rt, relay_rt, projector_rt = bootstrap(s.db_url), bootstrap(s.db_url), bootstrap(s.db_url)
        outside = KafkaProducer(**s.settings.client_config(), acks="all")
        with threads(Engine(engine_rt, s.settings), Relay(relay_rt, s.settings), Projector(projector_rt, s.settings)):
            # The hotline reports a case; it has no ticket id yet, so it is keyed by its case number.
            report = {"type": "report", "command_id": "hl-1", "occurred_at": _at(0), "external_ref": "12345-0001",
                      "actor": {"role": "hotline", "id": "op-7"}, "grid": "cj-shuiku-g01",
                      "category": "city_appearance", "channel": "hotline", "description": "路边垃圾堆积"}
            outside.send(s.topics.intake, key=b"12345-0001", value=json.dumps(report).encode()).get(timeout=30)

            # The client learns the case number (工单编号) from the Reported event on ticket-events,
            # and names the ticket by it from then on, as a caller would.
            def reported():
                for r in read_topic(s.settings, s.topics.ticket_events):
                    event = json.loads(r.value)
                    if event["type"] == "Reported" and event["data"].get("external_ref") == "12345-0001":
                        return event["ticket_id"], event["data"]["case_no"]
                return None

            ticket, case_no = wait_for(reported, what="the Reported event")
            assert case_no.startswith("CAOJING-20260302-")
            centre = {"role": "centre", "id": "centre-1"}
            chengguan = {"role": "department", "id": "cg-desk", "department": "chengguan"}
            steps = [
                {"type": "accept", "actor": centre},
                {"type": "dispatch", "actor": centre},  # routed by category: 城管 leads
                {"type": "acknowledge", "actor": chengguan, "department": "chengguan"},
                {"type": "handle", "actor": chengguan, "department": "chengguan", "result": "已清运"},
                {"type": "feedback", "actor": centre, "message": "已回访"},
                {"type": "evaluate", "actor": {"role": "resident", "id": "r-1"}, "satisfaction": "satisfied",
                 "resolved": True},
                {"type": "close", "actor": centre},
            ]
            for n, step in enumerate(steps, start=1):
                body = step | {"ticket_id": case_no, "command_id": f"hl-1-{n}", "occurred_at": _at(30 * n)}
                outside.send(s.topics.intake, key=case_no.encode(), value=json.dumps(body, ensure_ascii=False).encode())
            outside.flush()

            wait_for(lambda: "Closed" in _ticket_events(s, ticket), what="the Closed event")
            assert _ticket_events(s, ticket) == ["Reported", "Accepted", "Dispatched", "Acknowledged", "Handled",
                                                 "FeedbackGiven", "Evaluated", "Closed"]
            # The whistle blew for the lead and each cooperating department, each on its own key.
            calls = [json.loads(r.value) for r in read_topic(s.settings, s.topics.whistle)]
            assert sorted((c["department"], c["role"]) for c in calls if c["kind"] == "call") == [
                ("chengguan", "lead"), ("huanwei", "cooperating"), ("zhifa", "cooperating")]
            # And the read model, fed from the topic, says closed.
            wait_for(lambda: list_tickets(projector_rt.engine, status="closed"), what="the projected ticket")
        outside.close()
        for rt in (engine_rt, relay_rt, projector_rt):
            rt.close()


def test_departments_receive_only_their_calls_and_answer_them_automatically(tmp_path):
    with stack(tmp_path, "departments") as s:
        engine_rt, relay_rt = bootstrap(s.db_url), bootstrap(s.db_url)
        # Ten city-appearance cases, reported, accepted and dispatched: 城管 leads, 环卫 and 综合执法 cooperate.
        messages = lifecycle_messages(engine_rt.reference, 10, start=T0, steps=("report", "accept", "dispatch"),
                                      category="city_appearance", tag="dep")
        producer = make_producer(s.settings)
        produce(producer, s.topics.intake, messages)
        with threads(Engine(engine_rt, s.settings), Relay(relay_rt, s.settings)):
            chengguan = DepartmentDesk(s.settings, "chengguan", producer=producer)
            inbox = wait_for(lambda: len(chengguan.inbox()) == 10 and chengguan.inbox(), what="10 calls")
            assert {c["department"] for c in inbox} == {"chengguan"} and {c["role"] for c in inbox} == {"lead"}
            assert DepartmentDesk(s.settings, "shuiwu").inbox() == []  # no calls for 水务

            def count(kind: str) -> int:
                return [json.loads(r.value)["type"] for r in read_topic(s.settings, s.topics.ticket_events)].count(kind)

            policy = AutoPolicy(ack_delay_minutes=20, handle_delay_minutes=90)
            # The cooperating departments report in first: a ticket's business times only move forward, so an
            # acknowledgement stamped before the lead's (already applied) handling would be refused.
            with threads(*[_Following(DepartmentDesk(s.settings, d, producer=producer, auto=policy))
                           for d in ("huanwei", "zhifa")]):
                wait_for(lambda: count("Acknowledged") == 20, what="20 cooperating acknowledgements")
            with threads(_Following(DepartmentDesk(s.settings, "chengguan", producer=producer, auto=policy))):
                wait_for(lambda: count("Handled") == 10, what="10 handled tickets")
            assert chengguan.inbox() == []
            # Business times are the dispatch time plus the delays, not the wall clock.
            ticket = engine_rt.app.get_ticket(inbox[0]["ticket_id"])
            assert ticket.status == "handled"
            assert ticket.last_at == inbox[0]["dispatched_at"] + timedelta(minutes=110)
        producer.close()
        engine_rt.close()
        relay_rt.close()


class _Following:
    """Adapts a desk to ``threads``: run(stop) follows the whistle."""

    def __init__(self, desk: DepartmentDesk):
        self.desk = desk

    def run(self, stop) -> None:
        self.desk.follow(stop)

    def close(self) -> None:
        pass
