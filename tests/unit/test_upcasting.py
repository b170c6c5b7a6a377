"""Event versions: a store written by the old code (Evaluated v1, no ``method``) reads,
rebuilds and counts exactly like one written by the current code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import StoredEvent

from dispatch.bootstrap import Runtime, bootstrap
from dispatch.domain.commands import parse_command
from dispatch.domain.errors import IllegalTransition, InvalidCommand
from dispatch.domain.upcasting import upcast_record
from dispatch.projections import catch_up, street_dashboard
from dispatch.projections.decode import records_from_notifications
from dispatch.projections.records import EventRecord, record_from_json, record_to_json
from dispatch.service.replay import compare, open_target, StoreSource
from dispatch.service.replay import rebuild
from tests.unit.test_replay_helpers import T0, run_scenario

EVALUATED = "dispatch.aggregates.ticket:Ticket.Evaluated"


def _all(runtime: Runtime) -> list[Any]:
    return list(runtime.app.recorder.select_notifications(1, 100_000))


def _v1_copy(current: Runtime, path: Path) -> Runtime:
    """The same history as the old code stored it: Evaluated without ``method`` and
    without a class version, written raw through the recorder."""
    old = bootstrap(str(path))
    transcoder = current.app.mapper.transcoder
    stored = []
    for n in _all(current):
        state = n.state
        if n.topic == EVALUATED:
            body = transcoder.decode(state)
            del body["method"], body["class_version"]
            state = transcoder.encode(body)
        stored.append(StoredEvent(originator_id=n.originator_id, originator_version=n.originator_version,
                                  topic=n.topic, state=state))
    old.app.recorder.insert_events(stored)
    return old


@pytest.fixture
def stores(tmp_path: Path) -> Any:
    current = run_scenario(tmp_path / "v2.db", n=60)
    old = _v1_copy(current, tmp_path / "v1.db")
    yield current, old
    current.close()
    old.close()


def test_the_old_store_really_holds_v1_events(stores: Any) -> None:
    current, old = stores
    evaluated = [n for n in _all(old) if n.topic == EVALUATED]
    assert evaluated
    raw = json.loads(evaluated[0].state)
    assert "method" not in raw and "class_version" not in raw
    assert json.loads([n for n in _all(current) if n.topic == EVALUATED][0].state)["class_version"] == 2


def test_v1_events_read_as_collected_by_call_back(stores: Any) -> None:
    _, old = stores
    records = records_from_notifications(_all(old), old.app.mapper)
    methods = {r.data["method"] for r in records if r.type == "Evaluated"}
    assert methods == {"callback"}


def test_old_and_new_stores_give_identical_projections_and_figures(stores: Any, tmp_path: Path) -> None:
    current, old = stores
    catch_up(current)
    catch_up(old)
    assert compare(current.engine, old.engine).ok
    as_of = T0.replace(day=18, hour=12)
    assert (street_dashboard(current.engine, current.reference, "caojing", as_of=as_of)
            == street_dashboard(old.engine, old.reference, "caojing", as_of=as_of))


def test_a_rebuild_of_the_old_store_equals_the_live_new_one(stores: Any, tmp_path: Path) -> None:
    current, old = stores
    catch_up(current)
    target = open_target(str(tmp_path / "rebuilt.db"), old.reference, source="test")
    try:
        result = rebuild(StoreSource(old.app, page_size=50), target.engine, progress=False)
        assert result.read == result.applied == len(_all(old))
        assert compare(current.engine, target.engine).ok
    finally:
        target.close()


def test_tickets_load_the_same_from_old_events(stores: Any) -> None:
    current, old = stores
    ids = {n.originator_id for n in _all(current) if n.topic == EVALUATED}
    for tid in ids:
        assert vars(old.app.get_ticket(tid)) == vars(current.app.get_ticket(tid))


def test_a_wire_record_from_an_older_relay_is_upcast() -> None:
    # An Evaluated published before v2 has no "method" on the ticket-events topic.
    record = EventRecord(1, uuid4(), 9, "Evaluated",
                         {"occurred_at": T0, "satisfaction": "satisfied", "resolved": True, "contacted": True})
    decoded = upcast_record(record_from_json(record_to_json(record)))
    assert decoded.data["method"] == "callback"
    newer = upcast_record(record_from_json(record_to_json(
        EventRecord(2, record.ticket_id, 9, "Evaluated", {**record.data, "method": "sms"}))))
    assert newer.data["method"] == "sms"
    other = EventRecord(3, record.ticket_id, 1, "Accepted", {"occurred_at": T0})
    assert upcast_record(other) is other


def test_the_method_is_recorded_and_checked(tmp_path: Path) -> None:
    runtime = run_scenario(tmp_path / "sms.db", n=30, evaluate_method="sms")
    try:
        records = records_from_notifications(_all(runtime), runtime.app.mapper)
        assert {r.data["method"] for r in records if r.type == "Evaluated"} == {"sms"}
    finally:
        runtime.close()
    base = {"type": "evaluate", "occurred_at": T0.isoformat(), "actor": {"role": "resident", "id": "r"},
            "ticket_id": "7ff6ddba-73bc-5e82-b86f-63150e725310", "satisfaction": "satisfied", "resolved": True}
    assert parse_command(base).method == "callback"
    with pytest.raises(InvalidCommand):
        parse_command({**base, "method": "carrier_pigeon"})


def test_the_aggregate_refuses_an_unknown_method() -> None:
    from tests.unit.test_ticket import CENTRE, at, new_ticket, through_handling

    ticket = new_ticket()
    through_handling(ticket)
    ticket.give_feedback(occurred_at=at(90), actor=CENTRE, message="", contacted=True)
    with pytest.raises(IllegalTransition):
        ticket.evaluate(occurred_at=at(100), actor=CENTRE, satisfaction="satisfied", resolved=True,
                        contacted=True, method="telepathy")
    ticket.evaluate(occurred_at=at(100), actor=CENTRE, satisfaction="satisfied", resolved=True, contacted=True,
                    method="in_person")
    assert ticket.pending_events[-1].method == "in_person"  # type: ignore[attr-defined]
