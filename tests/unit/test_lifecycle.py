"""The lifecycle is written once: every event type has every part, and the write side and the
read side fold a history to the same state.

Adding a step (say "Verified" between Handled and Closed) fails here until the aggregate's
event, the transition table row, the fold case, the timeline label, the wire schema entry and
the command verb are all there (docs/architecture.md walks through it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args
from uuid import UUID

import pytest

from dispatch.aggregates.ticket import Ticket
from dispatch.domain import lifecycle
from dispatch.domain.commands import Command
from dispatch.domain.lifecycle import LIFECYCLE, STATUSES, fold, new_state, open_deadlines
from dispatch.service.handlers import HANDLERS

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def _event_types() -> set[str]:
    return {name for name, value in vars(Ticket).items()
            if isinstance(value, type) and issubclass(value, Ticket.Event) and name not in ("Event", "Created")}


def _verbs() -> set[str]:
    union = get_args(get_args(Command)[0])
    return {model.model_fields["type"].default for model in union}


def test_every_event_of_the_aggregate_has_a_lifecycle_row_and_every_row_an_event() -> None:
    assert _event_types() == set(LIFECYCLE)


def test_every_event_type_has_a_fold_case() -> None:
    assert set(lifecycle._FOLD) == set(LIFECYCLE)


def test_an_event_type_without_a_fold_case_is_refused_not_skipped() -> None:
    with pytest.raises(ValueError, match="Verified"):
        fold(new_state(), "Verified", {}, None)


def test_every_event_type_has_a_timeline_label_and_valid_statuses() -> None:
    for kind, step in LIFECYCLE.items():
        assert step.label.strip(), kind
        assert set(step.came_from) <= set(STATUSES), kind
        assert step.to is None or step.to in STATUSES, kind


def test_every_event_type_is_on_the_wire_schema() -> None:
    schema = json.loads((SCHEMAS / "ticket-event.schema.json").read_text(encoding="utf-8"))
    assert set(schema["properties"]["type"]["enum"]) == set(LIFECYCLE)


def test_every_event_type_is_recorded_by_a_command_verb_with_a_handler() -> None:
    verbs = _verbs()
    assert {step.verb for step in LIFECYCLE.values()} <= verbs
    assert len(HANDLERS) == len(verbs)


def test_the_aggregate_and_a_read_side_state_fold_a_history_alike(tmp_path: Path) -> None:
    from tests.unit.test_projections import _runtime
    from tests.unit.test_sla_scenario import play  # the hand-computed scenario: every kind of step

    runtime = _runtime(tmp_path / "a.db")
    ids = play(runtime)
    try:
        assert len(ids) > 10
        for tid in ids.values():
            ticket = runtime.app.get_ticket(UUID(tid))
            state = new_state()
            for event in runtime.app.events.get(ticket.id):
                data = vars(event)
                fold(state, type(event).__name__, data, data["occurred_at"], event.originator_version)
            for key in ("status", "dispatch_no", "lead", "handled_by", "satisfaction", "level", "escalations",
                        "closed_via", "feedback_at", "last_at", "calls"):
                assert state[key] == ticket[key], key
            assert open_deadlines(state) == open_deadlines(ticket)
    finally:
        runtime.close()


def test_the_relay_tells_each_desk_where_its_call_stands() -> None:
    from datetime import datetime, timedelta, timezone
    from uuid import uuid4

    from consumers.department import Inbox
    from dispatch.adapters.kafka import whistle_from_json, whistle_messages
    from dispatch.projections.records import EventRecord

    at = datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=8)))
    tid, state = uuid4(), new_state()
    calls = [{"call_id": "1:chengguan", "department": "chengguan", "role": "lead", "ack_due": at},
             {"call_id": "1:huanwei", "department": "huanwei", "role": "cooperating", "ack_due": at}]
    history = [
        ("Reported", {"grid": "g", "community": "c", "street": "s", "district": "d", "category": "x",
                      "priority": "normal", "channel": "patrol"}),
        ("Accepted", {}),
        ("Dispatched", {"dispatch_no": 1, "lead": "chengguan", "cooperating": ["huanwei"], "calls": calls,
                        "handle_due": at, "feedback_due": at, "time_basis": "calendar", "escalate_every_minutes": 60}),
        ("Acknowledged", {"call_id": "1:chengguan", "department": "chengguan"}),
        ("Acknowledged", {"call_id": "1:huanwei", "department": "huanwei"}),
        ("Handled", {"department": "chengguan", "result": "ok", "call_id": None}),  # a v1 event: no call named
    ]
    inboxes = {"chengguan": Inbox(), "huanwei": Inbox()}
    said = []
    for version, (kind, data) in enumerate(history, start=1):
        record = EventRecord(version, tid, version, kind, {"occurred_at": at, "actor": {}, **data})
        fold(state, kind, record.data, at, version)
        for key, value in whistle_messages(record, None, state):
            message = whistle_from_json(value)
            said.append((key.decode(), message["kind"], message["state"]))
            inboxes[key.decode()].add(message)
        if kind == "Acknowledged" and data["department"] == "chengguan":
            assert [c["state"] for c in inboxes["chengguan"].pending()] == ["to_handle"]
    assert said == [("chengguan", "call", "waiting"), ("huanwei", "call", "waiting"),
                    ("chengguan", "answer", "to_handle"), ("huanwei", "answer", "done"),
                    ("chengguan", "answer", "done")]
    assert inboxes["chengguan"].pending() == [] and inboxes["huanwei"].pending() == []
