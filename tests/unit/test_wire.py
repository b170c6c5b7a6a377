"""The Kafka wire format: schema files, keys, whistle messages, dead-letter headers."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from uuid import uuid4

import warnings

import pytest

from dispatch.aggregates import ticket_id_for
from dispatch.domain.commands import parse_command

with warnings.catch_warnings():  # kafka-python loads its protocol JSON with a deprecated importlib call
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka.consumer.fetcher import ConsumerRecord

    from dispatch.adapters.kafka import DeadLetter, KafkaSettings, Topics, intake_key, whistle_from_json, whistle_messages
    from dispatch.adapters.kafka.schemas import INTAKE_SCHEMA, intake_schema_text
from dispatch.projections.records import EventRecord, record_from_json, record_to_json

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
CST = timezone(timedelta(hours=8))
AT = datetime(2026, 3, 2, 9, 30, tzinfo=CST)


def _validator(name: str):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_committed_intake_schema_is_the_generated_one():
    # If this fails: run `dispatch schemas` and commit schemas/intake-command.schema.json.
    assert (SCHEMAS / INTAKE_SCHEMA).read_text(encoding="utf-8") == intake_schema_text()


def test_a_command_in_the_docs_shape_is_valid_against_the_intake_schema():
    validator = _validator(INTAKE_SCHEMA)
    body = {"type": "acknowledge", "ticket_id": str(uuid4()), "occurred_at": AT.isoformat(),
            "department": "chengguan", "actor": {"role": "department", "id": "cg-1", "department": "chengguan"}}
    assert not list(validator.iter_errors(body))
    assert list(validator.iter_errors({"type": "acknowledge"}))


def test_a_report_is_keyed_by_the_ticket_id_it_will_get_so_its_ticket_stays_on_one_partition():
    report = parse_command({"type": "report", "command_id": "c-1", "occurred_at": AT.isoformat(),
                            "actor": {"role": "supervisor", "id": "s"}, "grid": "g", "category": "c",
                            "channel": "patrol", "description": "d"})
    ticket_id = ticket_id_for(command_id="c-1")
    assert intake_key(report) == str(ticket_id).encode()
    accept = parse_command({"type": "accept", "ticket_id": str(ticket_id), "occurred_at": AT.isoformat(),
                            "actor": {"role": "centre", "id": "c"}})
    assert intake_key(accept) == intake_key(report)
    by_ref = report.model_copy(update={"external_ref": "12345-001"})
    assert intake_key(by_ref) == str(ticket_id_for(external_ref="12345-001", channel="patrol")).encode()


def _dispatched() -> EventRecord:
    due = AT + timedelta(hours=2)
    calls = [{"call_id": "1:chengguan", "department": "chengguan", "role": "lead", "ack_due": due},
             {"call_id": "1:huanwei", "department": "huanwei", "role": "cooperating", "ack_due": due}]
    return EventRecord(position=7, ticket_id=uuid4(), version=3, type="Dispatched", data={
        "occurred_at": AT, "actor": {"role": "centre", "id": "c"}, "command_id": "x", "dispatch_no": 1,
        "lead": "chengguan", "cooperating": ["huanwei"], "calls": calls, "handle_due": AT + timedelta(days=1),
        "feedback_due": AT + timedelta(days=2), "time_basis": "working", "escalate_every_minutes": 60})


def test_a_dispatch_whistles_once_per_department_keyed_by_department():
    record = _dispatched()
    messages = whistle_messages(record, {"grid": "g1", "category": "city_appearance", "description": "垃圾"})
    assert [key for key, _ in messages] == [b"chengguan", b"huanwei"]
    validator = _validator("whistle.schema.json")
    for _, value in messages:
        assert not list(validator.iter_errors(json.loads(value)))
    call = whistle_from_json(messages[0][1])
    assert (call["ticket_id"], call["role"], call["dispatched_at"]) == (record.ticket_id, "lead", AT)


def test_answers_whistle_back_to_the_department_and_other_events_do_not():
    ticket = uuid4()
    acked = EventRecord(8, ticket, 4, "Acknowledged", {"occurred_at": AT, "actor": {"role": "department", "id": "d"},
                                                       "command_id": None, "call_id": "1:chengguan",
                                                       "department": "chengguan"})
    [(key, value)] = whistle_messages(acked)
    assert key == b"chengguan" and json.loads(value)["answer"] == "acknowledged"
    assert not list(_validator("whistle.schema.json").iter_errors(json.loads(value)))
    accepted = EventRecord(2, ticket, 2, "Accepted", {"occurred_at": AT, "actor": {}, "command_id": None, "note": ""})
    assert whistle_messages(accepted) == []


def test_ticket_events_match_their_schema_and_read_back_equal():
    record = _dispatched()
    raw = record_to_json(record)
    assert not list(_validator("ticket-event.schema.json").iter_errors(json.loads(raw)))
    assert record_from_json(raw) == record


def test_a_dead_letter_keeps_the_original_bytes_and_says_where_from_and_why():
    original = ConsumerRecord("p.intake", 3, -1, 42, 1_700_000_000_000, 0, b"k", b"\xff not json",
                              [("trace", b"t-1")], None, 1, 11, 0)
    letter = DeadLetter.of(original, "invalid_command", "message: Invalid JSON")
    headers = letter.kafka_headers()
    assert ("trace", b"t-1") in headers and ("dispatch.error.code", b"invalid_command") in headers
    assert not list(_validator("dead-letter-headers.schema.json").iter_errors(
        {k: v.decode() for k, v in headers if k.startswith("dispatch.")}))
    on_dlq = original._replace(topic="p.dead-letters", partition=0, offset=0, headers=headers)
    assert DeadLetter.from_record(on_dlq) == letter


def test_topic_names_carry_the_prefix():
    topics = KafkaSettings(prefix="t1.").topics
    assert topics == Topics("t1.")
    assert topics.all() == ["t1.intake", "t1.ticket-events", "t1.whistle", "t1.dead-letters", "t1.intake.hotline",
                            "t1.intake.watchdog"]
    assert KafkaSettings(prefix="t1.").partitions_of("t1.dead-letters") == 1
    assert KafkaSettings(prefix="t1.").partitions_of("t1.intake.hotline") == 3


def test_desks_hear_moved_deadlines_and_calls_closed_out_with_their_ticket():
    from consumers.department import Inbox
    from dispatch.domain.lifecycle import fold, new_state

    ticket, state, inbox = uuid4(), new_state(), Inbox()
    calls = [{"call_id": "1:chengguan", "department": "chengguan", "role": "lead", "ack_due": AT},
             {"call_id": "1:huanwei", "department": "huanwei", "role": "cooperating", "ack_due": AT}]
    later = AT + timedelta(hours=6)
    history = [
        ("Reported", {"grid": "g", "community": "c", "street": "s", "district": "d", "category": "x",
                      "priority": "normal", "channel": "patrol"}),
        ("Dispatched", {"dispatch_no": 1, "lead": "chengguan", "cooperating": ["huanwei"], "calls": calls,
                        "handle_due": AT + timedelta(days=1), "feedback_due": AT + timedelta(days=2),
                        "time_basis": "calendar", "escalate_every_minutes": 60}),
        ("Held", {"reason": "等待"}),
        ("Resumed", {"dues": {"ack:1:chengguan": later, "ack:1:huanwei": later,
                              "handle:1": AT + timedelta(days=1, hours=6)}, "note": ""}),
        ("Cancelled", {"reason": "误报"}),
    ]
    heard = []
    validator = _validator("whistle.schema.json")
    for version, (kind, data) in enumerate(history, start=1):
        record = EventRecord(version, ticket, version, kind, {"occurred_at": AT, "actor": {}, "command_id": None,
                                                              **data})
        fold(state, kind, record.data, AT, version)
        for key, value in whistle_messages(record, None, state):
            assert not list(validator.iter_errors(json.loads(value)))
            message = whistle_from_json(value)
            heard.append((key.decode(), message["kind"]))
            inbox.add(message)
        if kind == "Resumed":  # both desks now hold the moved due times
            assert {(c["department"], c["ack_due"]) for c in inbox.pending()} == {("chengguan", later),
                                                                                ("huanwei", later)}
            assert next(c for c in inbox.pending() if c["role"] == "lead")["handle_due"] == AT + timedelta(days=1,
                                                                                                        hours=6)
    assert heard.count(("chengguan", "deadline")) == 1 and heard.count(("huanwei", "answer")) == 1
    assert inbox.pending() == []  # the cancellation closed both calls out
