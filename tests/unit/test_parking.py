"""Answers that reach the engine before the dispatch they answer wait for it (``dispatch.service.parking``):
parked in the batch's transaction, woken by the dispatch in order, given up with their own bytes
when the ticket ends, bounded, and never parked by a batch that was not recorded. Driven as the
Kafka engine drives a batch (its gate, its ``before_record``), on the embedded SQLite store."""

from __future__ import annotations

import json
import warnings
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest

from dispatch.adapters import parked_store
from dispatch.adapters.outcome_log import ensure_table
from dispatch.aggregates import ticket_id_for
from dispatch.bootstrap import bootstrap
from dispatch.domain.commands import parse_command
from dispatch.service import parking
from dispatch.service.parking import Lot

with warnings.catch_warnings():  # kafka-python's import-time DeprecationWarning
    warnings.simplefilter("ignore", DeprecationWarning)
    from dispatch.adapters.eventstore import WithOutcomes
    from dispatch.adapters.kafka import FencedTracking, install_fence

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=8)))
TICKET = str(ticket_id_for(external_ref="12345-park", channel="hotline"))
CENTRE = {"role": "centre", "id": "c-1"}


def desk(department: str) -> dict[str, Any]:
    return {"role": "department", "id": f"{department}-desk", "department": department}


class Engine:
    """One partition read in batches, as ``consumers.engine`` applies them."""

    def __init__(self, runtime: Any):
        self.runtime, self.app, self.db = runtime, runtime.app, runtime.engine
        install_fence(self.app.recorder)
        ensure_table(self.db)
        parked_store.ensure_table(self.db)
        self.offset, self.stored, self.dead, self.n = -1, None, [], 0
        self.clock = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)  # the engine's clock, moved by the tests

    def message(self, body: dict[str, Any], minutes: int) -> Any:
        self.offset += 1
        self.n += 1
        body = body | {"command_id": f"m-{self.n}", "occurred_at": (T0 + timedelta(minutes=minutes)).isoformat()}
        if body["type"] != "report":
            body["ticket_id"] = TICKET
        return SimpleNamespace(topic="answers", partition=0, offset=self.offset, timestamp=None, key=TICKET.encode(),
                               value=json.dumps(body, ensure_ascii=False).encode(),
                               headers=[("trace-id", f"t-{self.n}".encode())])

    def batch(self, *steps: tuple[dict[str, Any], int], fail: bool = False) -> list[Any]:
        records = [self.message(body, minutes) for body, minutes in steps]
        commands, origins = [], {}
        for record in records:
            command = parse_command(record.value)
            commands.append(command)
            origins[id(command)] = record
        lot = Lot(parked_store.waiting(self.db), lambda tickets: parked_store.load(self.db, tickets),
                  lambda row: parse_command(row.value), lambda command: origins[id(command)], now=lambda: self.clock)
        fence = FencedTracking("answers:0", records[-1].offset, self.stored)
        tracking = WithOutcomes(fence.application_name, fence.notification_id, inner=fence)
        dead: list[Any] = []

        def before_record(outcomes: list[Any]) -> None:
            lot.settle(outcomes, tracking, dead)
            if fail:
                raise RuntimeError("the process died before the transaction")

        outcomes = self.app.execute_batch(commands, tracking=tracking, before_record=before_record, gate=lot)
        self.stored = records[-1].offset
        self.dead += dead
        return outcomes

    def events(self) -> list[str]:
        return [type(e).__name__ for e in self.app.events.get(ticket_id_for(external_ref="12345-park",
                                                                                 channel="hotline"))]

    def sweep(self) -> list[Any]:
        """As the engine's periodic sweep: every parked command tried again; the dead letters."""
        lot, commands = Lot.sweeping(parked_store.load(self.db), lambda row: parse_command(row.value),
                                     now=lambda: self.clock)
        tracking, dead = WithOutcomes("parked", 0), []
        self.app.execute_batch(commands, tracking=tracking, before_record=lambda o: lot.settle(o, tracking, dead),
                               gate=lot)
        self.dead += dead
        return dead

    def waiting(self) -> list[tuple[int, str]]:
        return [(p.dispatch_no, json.loads(p.value)["type"]) for p in parked_store.load(self.db)]


@pytest.fixture
def engine(tmp_path):
    runtime = bootstrap(str(tmp_path / "park.db"))
    yield Engine(runtime)
    runtime.close()


REPORT = {"type": "report", "actor": {"role": "hotline", "id": "op"}, "grid": "cj-shuiku-g01",
          "category": "city_appearance", "channel": "hotline", "description": "垃圾", "external_ref": "12345-park"}


def _rejected_by_chengguan(engine: Engine) -> None:
    """A ticket whose first dispatch 城管 turned down: it waits for dispatch 2."""
    engine.batch((REPORT, 0), ({"type": "accept", "actor": CENTRE}, 1),
                 ({"type": "dispatch", "actor": CENTRE, "lead": "chengguan", "cooperating": []}, 2),
                 ({"type": "reject", "actor": desk("chengguan"), "department": "chengguan", "dispatch_no": 1,
                   "reason": "不属于本部门"}, 3))


def _ack(department: str, n: int) -> dict[str, Any]:
    return {"type": "acknowledge", "actor": desk(department), "department": department, "dispatch_no": n}


def _handle(department: str, n: int) -> dict[str, Any]:
    return {"type": "handle", "actor": desk(department), "department": department, "dispatch_no": n, "result": "已清运"}


REDISPATCH = {"type": "dispatch", "actor": CENTRE, "lead": "huanwei", "cooperating": [], "reason": "改派环卫"}


def test_answers_before_their_dispatch_wait_for_it_and_are_applied_in_order(engine: Engine) -> None:
    _rejected_by_chengguan(engine)
    # 环卫's report-in and handling of dispatch 2 arrive before dispatch 2 itself
    outcomes = engine.batch((_ack("huanwei", 2), 20), (_handle("huanwei", 2), 50))
    assert [o.error.code for o in outcomes] == ["awaiting_dispatch", "awaiting_dispatch"]
    assert engine.waiting() == [(2, "acknowledge"), (2, "handle")]
    assert engine.dead == [] and engine.app.recorder.max_tracking_id("answers:0") == engine.stored
    # the dispatch comes: both answers run right after it, oldest first, in its transaction
    engine.batch((REDISPATCH, 10))
    assert engine.events() == ["Reported", "Accepted", "Dispatched", "Rejected", "Redispatched", "Acknowledged",
                               "Handled"]
    assert engine.waiting() == [] and engine.dead == []


def test_within_one_batch_an_answer_waits_and_the_next_waits_behind_it(engine: Engine) -> None:
    _rejected_by_chengguan(engine)
    outcomes = engine.batch((_ack("huanwei", 2), 20), (REDISPATCH, 10), (_handle("huanwei", 2), 50))
    assert [o.ok for o in outcomes] == [False, True, True, True]  # the ack ran again after the dispatch
    assert engine.events()[-3:] == ["Redispatched", "Acknowledged", "Handled"]
    assert engine.waiting() == [] and engine.dead == []


def test_a_later_answer_of_the_same_dispatch_waits_behind_an_earlier_one(engine: Engine) -> None:
    _rejected_by_chengguan(engine)
    engine.batch((_ack("huanwei", 2), 20))
    # handled before it reported in? No: it waits behind the report-in, and both go when dispatch 2 does
    outcomes = engine.batch((_handle("huanwei", 2), 50))
    assert outcomes[0].error.code == "awaiting_dispatch" and "behind" in str(outcomes[0].error)
    engine.batch((REDISPATCH, 10))
    assert engine.events()[-2:] == ["Acknowledged", "Handled"] and engine.dead == []


def test_an_answer_whose_ticket_ends_first_is_dead_lettered_with_its_own_bytes(engine: Engine) -> None:
    _rejected_by_chengguan(engine)
    engine.batch((_ack("huanwei", 2), 20))
    ack_bytes = parked_store.load(engine.db)[0].value
    engine.batch(({"type": "cancel", "actor": CENTRE, "reason": "重复上报"}, 30))
    assert engine.waiting() == []
    [letter] = engine.dead
    assert (letter.code, letter.value, letter.offset) == ("ticket_closed", ack_bytes, 4)


def test_an_answer_to_a_replaced_dispatch_is_refused(engine: Engine) -> None:
    _rejected_by_chengguan(engine)
    engine.batch((REDISPATCH, 10))
    outcomes = engine.batch((_ack("chengguan", 1), 20))
    assert outcomes[0].error.code == "call_replaced" and [d.code for d in engine.dead] == ["call_replaced"]
    assert engine.waiting() == []


def test_parking_is_bounded(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parking, "MAX_PER_TICKET", 2)
    _rejected_by_chengguan(engine)
    engine.batch((_ack("huanwei", 2), 20), (_ack("huanwei", 3), 21))
    engine.batch((_ack("huanwei", 4), 22))
    assert engine.waiting() == [(2, "acknowledge"), (3, "acknowledge")]
    assert [(d.code, d.offset) for d in engine.dead] == [("parking_full", 6)]
    assert "already wait" in engine.dead[0].message


def test_a_batch_that_is_not_recorded_parks_nothing(engine: Engine) -> None:
    _rejected_by_chengguan(engine)
    with pytest.raises(RuntimeError):
        engine.batch((_ack("huanwei", 2), 20), fail=True)
    assert engine.waiting() == [] and engine.app.recorder.max_tracking_id("answers:0") == 3
    engine.offset = 3  # the message is read again from the stored position
    engine.stored = 3
    engine.batch((_ack("huanwei", 2), 20))
    assert engine.waiting() == [(2, "acknowledge")]


def test_a_sweep_applies_answers_whose_dispatch_another_engine_applied(engine: Engine) -> None:
    _rejected_by_chengguan(engine)
    engine.batch((_ack("huanwei", 2), 20))
    # another engine applied dispatch 2 while this one parked the answer: no wake-up came
    engine.app.execute_batch([parse_command(json.loads(engine.message(REDISPATCH, 10).value.decode()))])
    assert engine.waiting() == [(2, "acknowledge")]
    lot, commands = Lot.sweeping(parked_store.load(engine.db), lambda row: parse_command(row.value))
    tracking, dead = WithOutcomes("parked", 0), []
    engine.app.execute_batch(commands, tracking=tracking, before_record=lambda o: lot.settle(o, tracking, dead),
                             gate=lot)
    assert engine.waiting() == [] and dead == []
    assert engine.events()[-2:] == ["Redispatched", "Acknowledged"]


def test_a_sweep_that_only_gives_answers_up_records_no_event_and_clears_them(engine: Engine) -> None:
    _rejected_by_chengguan(engine)
    engine.batch((_ack("huanwei", 2), 20))
    value = parked_store.load(engine.db)[0].value
    # another engine cancelled the ticket: nothing woke the answer, and it can never be applied now
    engine.app.execute_batch([parse_command(json.loads(engine.message(
        {"type": "cancel", "actor": CENTRE, "reason": "重复上报"}, 30).value.decode()))])
    events = len(engine.events())
    lot, commands = Lot.sweeping(parked_store.load(engine.db), lambda row: parse_command(row.value))
    tracking, dead = WithOutcomes("parked", 0), []
    engine.app.execute_batch(commands, tracking=tracking, before_record=lambda o: lot.settle(o, tracking, dead),
                             gate=lot)
    assert engine.waiting() == [] and len(engine.events()) == events
    assert [(d.code, d.value) for d in dead] == [("ticket_closed", value)]


def test_an_answer_woken_too_early_waits_again_and_goes_with_its_own_dispatch(engine: Engine) -> None:
    _rejected_by_chengguan(engine)
    engine.batch((_ack("huanwei", 3), 40))
    # one batch: dispatch 2 (城管 again, which turns it down again), then dispatch 3 to 环卫
    engine.batch(({"type": "dispatch", "actor": CENTRE, "lead": "chengguan", "cooperating": []}, 10),
                 ({"type": "reject", "actor": desk("chengguan"), "department": "chengguan", "dispatch_no": 2,
                   "reason": "仍不属于本部门"}, 15),
                 (REDISPATCH, 20))
    assert engine.events()[-4:] == ["Redispatched", "Rejected", "Redispatched", "Acknowledged"]
    assert engine.waiting() == [] and engine.dead == []


# -- any command before its report ----------------------------------------------------------------------

ACCEPT = {"type": "accept", "actor": CENTRE}
DISPATCH = {"type": "dispatch", "actor": CENTRE, "lead": "huanwei", "cooperating": []}
FEEDBACK = {"type": "feedback", "actor": CENTRE, "message": "已清运"}
EVALUATE = {"type": "evaluate", "actor": {"role": "hotline", "id": "op"}, "satisfaction": "satisfied",
            "resolved": True}
CLOSE = {"type": "close", "actor": CENTRE}
LIFECYCLE = ["Reported", "Accepted", "Dispatched", "Acknowledged", "Handled", "FeedbackGiven", "Evaluated", "Closed"]


def test_a_whole_lifecycle_arriving_in_reverse_is_applied_in_its_own_order(engine: Engine) -> None:
    steps = [(REPORT, 0), (ACCEPT, 1), (DISPATCH, 2), (_ack("huanwei", 1), 3), (_handle("huanwei", 1), 4),
             (FEEDBACK, 5), (EVALUATE, 6), (CLOSE, 7)]
    for body, minutes in reversed(steps[1:]):  # each in a batch of its own, the report last
        [outcome] = engine.batch((body, minutes))
        assert outcome.error.code == "ticket_not_found"
    assert [n for n, _ in engine.waiting()] == [0] * 7  # all wait for the report, in the order they came
    engine.batch((REPORT, 0))
    assert engine.events() == LIFECYCLE
    assert engine.waiting() == [] and engine.dead == []


def test_one_that_came_before_its_report_waits_for_its_turn_after_it(engine: Engine) -> None:
    engine.batch((FEEDBACK, 5))  # the feedback first, on its own topic
    engine.batch((REPORT, 0), (ACCEPT, 1))
    assert engine.waiting() == [(-1, "feedback")]  # the report is there; the handling is not yet
    engine.batch((DISPATCH, 2), (_ack("huanwei", 1), 3))
    assert engine.waiting() == [(-1, "feedback")]
    engine.batch((_handle("huanwei", 1), 4), (EVALUATE, 6))  # after the handling: its turn, then the evaluation
    assert engine.events() == LIFECYCLE[:-1] and engine.waiting() == [] and engine.dead == []


def test_a_command_whose_report_never_comes_is_given_up_after_the_window_with_its_bytes_and_headers(
        engine: Engine) -> None:
    engine.batch((ACCEPT, 1), (DISPATCH, 2))
    stored = [(p.value, p.headers) for p in parked_store.load(engine.db)]
    assert engine.sweep() == [] and len(engine.waiting()) == 2  # within the window: still waiting
    engine.clock += parking.REPORT_WINDOW
    dead = engine.sweep()
    assert [(d.code, d.value, d.headers) for d in dead] == [("ticket_not_found", v, h) for v, h in stored]
    assert stored[0][1] == (("trace-id", b"t-1"),) and engine.waiting() == [] and engine.events() == []


def test_a_parked_answer_refused_later_keeps_its_headers(engine: Engine) -> None:
    _rejected_by_chengguan(engine)
    engine.batch((_ack("huanwei", 2), 20))
    engine.batch(({"type": "cancel", "actor": CENTRE, "reason": "重复上报"}, 30))
    [letter] = engine.dead
    assert letter.code == "ticket_closed" and letter.headers == (("trace-id", f"t-{engine.n - 1}".encode()),)
    assert ("trace-id", f"t-{engine.n - 1}".encode()) in letter.kafka_headers()
