"""The SLA watchdog: once per rung per deadline, up the ladder, and never twice."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest

from dispatch.bootstrap import Runtime, bootstrap
from dispatch.domain.clock import SimulatedClock
from dispatch.domain.commands import parse_command
from dispatch.projections import catch_up, community_dashboard, list_tickets
from dispatch.service.watchdog import OpenDeadline, Watchdog, due_escalations

SH = ZoneInfo("Asia/Shanghai")
DUE = datetime(2026, 11, 20, 9, 40, tzinfo=SH)


def test_policy_owes_one_rung_at_the_deadline_and_one_more_every_interval() -> None:
    t1 = "5a6c87ef-4cfa-5bfa-b818-ebe3f52ef72d"
    d = OpenDeadline(t1, "ack:1:shuiwu", DUE, 120)
    assert due_escalations([d], DUE) == []  # at the deadline itself nothing is late yet
    first = due_escalations([d], DUE + timedelta(minutes=1))
    assert [(c.deadlines, c.rung) for c in first] == [(["ack:1:shuiwu"], 1)]
    assert first[0].command_id == f"watchdog:{t1}:1"
    assert first[0].actor.role == "system" and first[0].actor.id == "watchdog"
    assert [c.rung for c in due_escalations([d], DUE + timedelta(minutes=121))] == [1, 2]
    assert [c.rung for c in due_escalations([d], DUE + timedelta(days=3))] == [1, 2, 3]  # the district is the top
    at_the_street = OpenDeadline(t1, "ack:1:shuiwu", DUE, 120, "street")
    assert [c.rung for c in due_escalations([at_the_street], DUE + timedelta(days=3))] == [3]
    at_the_top = OpenDeadline(t1, "ack:1:shuiwu", DUE, 120, "district")
    assert due_escalations([at_the_top], DUE + timedelta(days=3)) == []


def test_several_missed_deadlines_of_one_ticket_climb_one_ladder_naming_each_cause() -> None:
    t1 = "5a6c87ef-4cfa-5bfa-b818-ebe3f52ef72d"
    missed = [OpenDeadline(t1, "ack:1:chengguan", DUE, 120), OpenDeadline(t1, "ack:1:huanwei", DUE, 120),
              OpenDeadline(t1, "handle:1", DUE + timedelta(minutes=200), 120)]
    owed = due_escalations(missed, DUE + timedelta(minutes=201))  # the acks earned 2 rungs, the handling 1
    assert [(c.rung, c.deadlines) for c in owed] == [
        (1, ["ack:1:chengguan", "ack:1:huanwei", "handle:1"]), (2, ["ack:1:chengguan", "ack:1:huanwei"])]
    assert len({c.command_id for c in owed}) == 2


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    clock = SimulatedClock(datetime(2026, 11, 20, 9, 0, tzinfo=SH))  # a Friday, a working day
    rt = bootstrap(str(tmp_path / "dog.db"), clock=clock)  # bundled sample reference data
    yield rt
    rt.close()


def _ticket(rt: Runtime) -> str:
    """A 12345 public-utilities ticket (lead 水务 shuiwu alone), dispatched 09:10: ack due 09:40
    (30 working minutes), escalation every 120 minutes."""
    def run(body: dict[str, object]) -> object:
        return rt.app.execute(parse_command(body))

    centre = {"role": "centre", "id": "c1"}
    out = run({"type": "report", "command_id": "r1", "occurred_at": "2026-11-20T09:00:00+08:00", "grid": "mch-aoti-g01",
               "category": "public_utilities", "channel": "hotline", "description": "no water",
               "actor": {"role": "hotline", "id": "h1"}})
    tid = str(out.ticket_id)  # type: ignore[attr-defined]
    run({"type": "accept", "ticket_id": tid, "occurred_at": "2026-11-20T09:05:00+08:00", "actor": centre})
    run({"type": "dispatch", "ticket_id": tid, "occurred_at": "2026-11-20T09:10:00+08:00", "actor": centre})
    return tid


def _escalations(rt: Runtime, tid: str) -> list[tuple[str, int, str]]:
    return [(e.deadline, e.rung, e.to_level) for e in rt.app.events.get(UUID(tid))
            if type(e).__name__ == "Escalated"]


def test_watchdog_escalates_once_per_rung_as_a_simulated_clock_crosses_the_deadline(runtime: Runtime) -> None:
    tid = _ticket(runtime)
    clock: SimulatedClock = runtime.clock  # type: ignore[assignment]
    dog = Watchdog(runtime)
    clock.set(DUE)
    assert dog.tick() == []  # on time until the deadline has passed
    clock.advance(timedelta(minutes=1))
    assert [o.ok for o in dog.tick()] == [True]
    assert _escalations(runtime, tid) == [("ack:1:shuiwu", 1, "community")]
    assert dog.tick() == []  # a second run at the same time adds nothing
    clock.advance(timedelta(minutes=120))  # 11:41: the street
    dog.tick()
    dog.tick()
    assert _escalations(runtime, tid) == [("ack:1:shuiwu", 1, "community"), ("ack:1:shuiwu", 2, "street")]
    clock.advance(timedelta(hours=8))  # long past: only the district is still owed
    dog.tick()
    assert [r for _, r, _ in _escalations(runtime, tid)] == [1, 2, 3]
    assert dog.tick() == []
    # the escalations are on the dashboard and in the ticket list
    board = community_dashboard(runtime.engine, runtime.reference, "mch-aoti", as_of=clock.now())
    assert board["escalations"] == 3
    assert board["escalations_by_level"] == {"community": 1, "street": 1, "district": 1}
    assert list_tickets(runtime.engine, community="mch-aoti")[0]["level"] == "district"


def test_a_repeated_command_is_refused_by_the_aggregate_too(runtime: Runtime) -> None:
    tid = _ticket(runtime)
    later = DUE + timedelta(minutes=5)
    runtime.clock.set(later)  # type: ignore[attr-defined]  # the watchdog acts at the clock's time
    commands = due_escalations([OpenDeadline(tid, "ack:1:shuiwu", DUE, 120)], later)
    assert [o.ok for o in runtime.app.execute_batch(commands)] == [True]
    # a stale read model would issue the same command again: refused, nothing recorded
    again = runtime.app.execute_batch(commands)
    assert [o.error.code for o in again if o.error] == ["duplicate_command"]
    catch_up(runtime)
    assert len(_escalations(runtime, tid)) == 1


def test_an_answered_call_stops_the_ack_escalations(runtime: Runtime) -> None:
    tid = _ticket(runtime)
    clock: SimulatedClock = runtime.clock  # type: ignore[assignment]
    clock.set(DUE + timedelta(minutes=10))
    Watchdog(runtime).tick()
    runtime.app.execute(parse_command({"type": "acknowledge", "ticket_id": tid, "department": "shuiwu",
                                       "occurred_at": "2026-11-20T10:00:00+08:00",
                                       "actor": {"role": "department", "id": "d1", "department": "shuiwu"}}))
    clock.advance(timedelta(hours=5))  # 14:50: the handling deadline (3 working days) is still ahead
    assert Watchdog(runtime).tick() == []
    assert _escalations(runtime, tid) == [("ack:1:shuiwu", 1, "community")]


def test_a_one_shot_run_at_a_business_time_stamps_escalations_in_the_reference_time_zone(
        runtime: Runtime, tmp_path: Path) -> None:
    from tests.unit.test_sla_scenario import cli_json

    tid = _ticket(runtime)
    db = str(tmp_path / "dog.db")
    # a UTC instant 1 minute after the deadline: the community rung, recorded at 09:41 Shanghai time
    at = (DUE + timedelta(minutes=1)).astimezone(ZoneInfo("UTC")).isoformat()
    done = cli_json(db, "watchdog", "--once", "--at", at)
    assert [(e["deadline"], e["rung"]) for e in done["escalated"]] == [("ack:1:shuiwu", 1)]
    history = cli_json(db, "history", tid)["events"]
    escalated = [e for e in history if e["event"] == "Escalated"]
    assert [e["occurred_at"] for e in escalated] == ["2026-11-20T09:41:00+08:00"]
