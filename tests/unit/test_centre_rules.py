"""The grid centre's rules: supervision per ticket, the closed loop, closed-out calls, the
calendar's coverage, case numbers, extensions and holds. Expected times are worked by hand in
the comments (working time 08:30-12:00, 13:30-17:30)."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
import yaml

from dispatch.bootstrap import Runtime, bootstrap
from dispatch.domain.clock import SimulatedClock
from dispatch.domain.commands import parse_command
from dispatch.domain.errors import DispatchError
from dispatch.projections import catch_up, community_dashboard
from dispatch.service import queries
from dispatch.service.watchdog import Watchdog
from tests.unit.test_sla_scenario import REFERENCE, cli_json

SH = ZoneInfo("Asia/Shanghai")
CENTRE = {"role": "centre", "id": "centre-1"}
RESIDENT = {"role": "resident", "id": "r-1"}


def dept(name: str) -> dict[str, str]:
    return {"role": "department", "id": f"{name}-1", "department": name}


class Desk:
    """Commands straight to the application, as every door sends them."""

    def __init__(self, runtime: Runtime):
        self.runtime, self.n = runtime, 0

    def __call__(self, kind: str, when: str, actor: dict[str, Any] = CENTRE, **fields: Any) -> Any:
        self.n += 1
        at = when if "T" in when else f"2026-{when}:00+08:00"
        return self.runtime.app.execute(parse_command({"type": kind, "command_id": f"k{self.n}", "occurred_at": at,
                                                       "actor": actor, **fields}))

    def report(self, when: str, grid: str = "ca-g01", category: str = "appearance", priority: str = "normal") -> str:
        out = self("report", when, {"role": "supervisor", "id": "sup-1"}, grid=grid, category=category,
                   priority=priority, channel="patrol", description="x")
        return str(out.ticket_id)

    def refused(self, code: str, kind: str, when: str, actor: dict[str, Any] = CENTRE, **fields: Any) -> None:
        try:
            tid = queries.resolve_ticket(self.runtime, fields["ticket_id"]) if "ticket_id" in fields else None
        except DispatchError:
            tid = None  # the step names no ticket there is
        before = len(list(self.runtime.app.events.get(tid))) if tid else None
        with pytest.raises(DispatchError) as refused:
            self(kind, when, actor, **fields)
        assert refused.value.code == code, str(refused.value)
        assert "Error" not in str(refused.value)  # a sentence, not a class name
        if tid is not None:
            assert len(list(self.runtime.app.events.get(tid))) == before  # nothing recorded


def _runtime(tmp_path: Path, reference: dict[str, Any] | None = None, now: str = "2026-12-01T12:00:00+08:00",
             name: str = "rules.db") -> Runtime:
    ref = tmp_path / f"{name}.yaml"
    ref.write_text(yaml.safe_dump(reference or REFERENCE, allow_unicode=True), encoding="utf-8")
    return bootstrap(str(tmp_path / name), reference_file=ref, clock=SimulatedClock(datetime.fromisoformat(now)))


@pytest.fixture
def rt(tmp_path: Path) -> Any:
    runtime = _runtime(tmp_path)
    yield runtime
    runtime.close()


# -- supervision per ticket ---------------------------------------------------------------------

def test_a_ticket_with_three_unanswered_calls_and_a_missed_handling_deadline_climbs_three_rungs_once_each(
        tmp_path: Path) -> None:
    # The bundled sample: 市容环卫 leads 城管 with 环卫 and 综合执法 cooperating; urgent = calendar time,
    # report in within 15 minutes, handle within 480, a rung every 60. Dispatched Fri 11-20 09:05:
    # report-ins due 09:20, handling due 17:05.
    clock = SimulatedClock(datetime(2026, 11, 20, 9, 0, tzinfo=SH))
    runtime = bootstrap(str(tmp_path / "ladder.db"), clock=clock)
    try:
        run = Desk(runtime)
        tid = str(run("report", "11-20 09:00", {"role": "hotline", "id": "h"}, grid="cj-shuiku-g01",
                      category="city_appearance", priority="urgent", channel="hotline", description="x").ticket_id)
        run("accept", "11-20 09:02", ticket_id=tid)
        run("dispatch", "11-20 09:05", ticket_id=tid)
        dog = Watchdog(runtime)
        # the first run comes late (17:06): every deadline is missed; three rungs are owed
        for at in ("2026-11-20T17:06:00+08:00", "2026-11-20T09:06:00Z", "2026-11-20T18:00:00+08:00",
                   "2026-11-23T09:00:00+08:00"):
            clock.set(datetime.fromisoformat(at))
            dog.tick()
            dog.tick()  # twice at the same instant: nothing more
        escalated = [vars(e) for e in runtime.app.events.get(UUID(tid)) if type(e).__name__ == "Escalated"]
        assert [(e["from_level"], e["to_level"]) for e in escalated] == [
            ("grid", "community"), ("community", "street"), ("street", "district")]
        assert escalated[0]["deadlines"] == ["ack:1:chengguan", "ack:1:huanwei", "ack:1:zhifa", "handle:1"]
        assert escalated[2]["deadlines"] == ["ack:1:chengguan", "ack:1:huanwei", "ack:1:zhifa"]
        assert {e["occurred_at"].utcoffset() for e in escalated} == {timedelta(hours=8)}  # the reference zone
        catch_up(runtime)
        board = community_dashboard(runtime.engine, runtime.reference, "cj-shuiku",
                                    as_of=datetime(2026, 11, 24, tzinfo=SH))
        assert board["escalations"] == 3
        assert board["escalations_by_level"] == {"community": 1, "street": 1, "district": 1}
        assert queries.show(runtime, tid)["level"] == "district"
        late = queries.overdue(runtime, now=datetime(2026, 11, 24, tzinfo=SH))
        assert {r["level"] for r in late} == {"district"}  # still late, and on the district's list
    finally:
        runtime.close()


def test_the_centres_own_deadlines_escalate_a_ticket_nobody_accepted(rt: Runtime) -> None:
    run = Desk(rt)
    tid = run.report("10-12 09:30")  # accept by 09:40, dispatch by 09:50 (10 and 20 working minutes)
    late = queries.overdue(rt, now=datetime(2026, 10, 12, 9, 45, tzinfo=SH))
    assert [(r["deadline"], r["department"], r["minutes_late"]) for r in late] == [("accept", None, 5.0)]
    assert [r["deadline"] for r in queries.overdue(rt, now=datetime(2026, 10, 12, 10, 0, tzinfo=SH))] == [
        "accept", "dispatch"]
    outcomes = Watchdog(rt).tick(datetime(2026, 10, 12, 9, 45, tzinfo=SH))
    assert [o.command.deadlines for o in outcomes] == [["accept"]]
    run("accept", "10-12 09:50", ticket_id=tid)
    assert [r["deadline"] for r in queries.overdue(rt, now=datetime(2026, 10, 12, 10, 0, tzinfo=SH))] == ["dispatch"]


# -- the loop: 上报—处理—反馈—评价 ------------------------------------------------------------------

def _handled(run: Desk, when: str = "10-12") -> str:
    """Appearance (lead 城管, cooperating 环卫), dispatched 10:00, 城管 reports in and handles."""
    tid = run.report(f"{when} 09:30")
    run("accept", f"{when} 09:35", ticket_id=tid)
    run("dispatch", f"{when} 10:00", ticket_id=tid)
    run("acknowledge", f"{when} 10:10", dept("chengguan"), ticket_id=tid, department="chengguan")
    run("handle", f"{when} 10:20", dept("chengguan"), ticket_id=tid, department="chengguan")
    return tid


def test_evaluation_needs_feedback_first(rt: Runtime) -> None:
    run = Desk(rt)
    tid = _handled(run)
    run.refused("feedback_not_given", "evaluate", "10-12 10:30", RESIDENT, ticket_id=tid, satisfaction="satisfied",
                resolved=True)
    run("feedback", "10-12 10:30", ticket_id=tid)
    run("evaluate", "10-12 10:40", RESIDENT, ticket_id=tid, satisfaction="satisfied", resolved=True)


def test_an_unsatisfied_result_is_reworked_or_closed_by_an_override_recorded_with_its_reason(rt: Runtime) -> None:
    run = Desk(rt)
    tid = _handled(run)
    run("feedback", "10-12 10:30", ticket_id=tid)
    run("evaluate", "10-12 10:40", RESIDENT, ticket_id=tid, satisfaction="basically_satisfied", resolved=False)
    run.refused("rework_required", "close", "10-12 10:50", ticket_id=tid)
    run("close", "10-12 10:50", ticket_id=tid, override="已纳入年度改造计划，先行办结")
    shown = queries.show(rt, tid)
    assert shown["closed_via"] == "override" and shown["override"] == "已纳入年度改造计划，先行办结"
    closed = [e for e in queries.history(rt, tid) if e["event"] == "Closed"]
    assert closed[0]["details"]["override"] == "已纳入年度改造计划，先行办结"


def test_reopen_follows_an_unsatisfied_evaluation_or_a_centre_reason_and_an_override_is_not_for_a_good_result(
        rt: Runtime) -> None:
    run = Desk(rt)
    tid = _handled(run)
    run("feedback", "10-12 10:30", ticket_id=tid)
    run("evaluate", "10-12 10:40", RESIDENT, ticket_id=tid, satisfaction="satisfied", resolved=True)
    run.refused("reopen_needs_reason", "reopen", "10-12 10:50", ticket_id=tid)
    run.refused("illegal_transition", "close", "10-12 10:50", ticket_id=tid, override="no reason to")
    run("reopen", "10-12 10:50", ticket_id=tid, reason="督查发现问题反弹")
    other = _handled(run, "10-13")
    run("feedback", "10-13 10:30", ticket_id=other)
    run("evaluate", "10-13 10:40", RESIDENT, ticket_id=other, satisfaction="unsatisfied", resolved=False)
    run("reopen", "10-13 10:50", ticket_id=other)  # the evaluation is reason enough
    assert queries.show(rt, other)["status"] == "reopened"


def test_no_duplicate_chains_no_cycles_and_nothing_duplicates_a_cancelled_ticket(rt: Runtime) -> None:
    run = Desk(rt)
    a, b, c = run.report("10-12 09:00"), run.report("10-12 09:01"), run.report("10-12 09:02")
    run("mark_duplicate", "10-12 09:10", ticket_id=a, original_id=b)
    run.refused("duplicate_of_ended", "mark_duplicate", "10-12 09:11", ticket_id=b, original_id=a)  # a cycle
    run.refused("duplicate_of_ended", "mark_duplicate", "10-12 09:11", ticket_id=c, original_id=a)  # a chain
    run("cancel", "10-12 09:12", ticket_id=b, reason="误报")
    run.refused("duplicate_of_ended", "mark_duplicate", "10-12 09:13", ticket_id=c, original_id=b)


def test_a_cooperating_department_reports_in_until_the_close_and_then_its_call_is_closed_out(rt: Runtime) -> None:
    run = Desk(rt)
    early, late = _handled(run), _handled(run, "10-13")  # 环卫's report-in due 11:00 on each day
    for tid, day in ((early, "10-12"), (late, "10-13")):
        run("feedback", f"{day} 10:30", ticket_id=tid)
        run("evaluate", f"{day} 10:40", RESIDENT, ticket_id=tid, satisfaction="satisfied", resolved=True)
    # evaluated, not closed: 环卫 may still report in on the first ticket... but does not
    assert {r["ticket_id"] for r in queries.inbox(rt, "huanwei", now=datetime(2026, 10, 13, 10, 45, tzinfo=SH))} \
        == {early, late}
    run("close", "10-12 10:50", ticket_id=early)  # 10:50: before its report-in deadline (11:00)
    run("close", "10-13 11:30", ticket_id=late)  # after it
    now = datetime(2026, 10, 14, 9, 0, tzinfo=SH)
    assert queries.inbox(rt, "huanwei", now=now) == []
    assert queries.overdue(rt, now=now) == []
    figures = {r["department"]: r for r in cli_json(str(rt.db.url.database), "sla", "--by", "department",
                                                    "--as-of", now.isoformat())["rows"]}
    # 环卫: the call closed out before its deadline is in neither part; the later one is late
    assert (figures["huanwei"]["dispatched"], figures["huanwei"]["ack_on_time"], figures["huanwei"]["ack_late"]) \
        == (1, 0, 1)


def test_a_cooperating_department_may_report_in_on_an_evaluated_ticket(rt: Runtime) -> None:
    run = Desk(rt)
    tid = _handled(run)
    run("feedback", "10-12 10:30", ticket_id=tid)
    run("evaluate", "10-12 10:40", RESIDENT, ticket_id=tid, satisfaction="satisfied", resolved=True)
    run("acknowledge", "10-12 10:45", dept("huanwei"), ticket_id=tid, department="huanwei")
    assert queries.inbox(rt, "huanwei", now=datetime(2026, 10, 12, 11, 0, tzinfo=SH)) == []


# -- the calendar: provisional deadlines, a year the reference file supplies --------------------

def test_a_working_time_deadline_in_a_year_the_holiday_table_lacks_is_provisional_until_the_year_is_supplied(
        tmp_path: Path) -> None:
    # Thu 2026-12-31 10:00, handling in 450 working minutes: 10:00-12:00 120, 13:30-17:30 240, then
    # 90 more in 2027, which the installed holiday table does not cover: Monday–Friday, so Fri
    # 2027-01-01 08:30 + 90 = 10:00, provisional.
    runtime = _runtime(tmp_path, now="2027-01-05T12:00:00+08:00", name="cal.db")
    try:
        run = Desk(runtime)
        tid = _handled_at(run, "2026-12-31")
        shown = queries.show(runtime, tid)
        assert shown["handle_due"] == datetime(2027, 1, 1, 10, 0, tzinfo=SH) and shown["provisional"]
        dispatched = next(e for e in queries.history(runtime, tid) if e["event"] == "Dispatched")
        assert dispatched["details"]["provisional"] is True
        assert "provisional" in cli_json(str(tmp_path / "cal.db"), "calendar", "--year", "2027")["warnings"][-1]
    finally:
        runtime.close()
    # the reference file supplies 2027: New Year's Day off, so the 90 minutes fall on Mon 01-04
    supplied = dict(REFERENCE, calendar_years=[2027], calendar_overrides={"2027-01-01": "holiday"})
    runtime = _runtime(tmp_path, supplied, now="2027-01-05T12:00:00+08:00", name="cal2.db")
    try:
        tid = _handled_at(Desk(runtime), "2026-12-31")
        shown = queries.show(runtime, tid)
        assert shown["handle_due"] == datetime(2027, 1, 4, 10, 0, tzinfo=SH) and not shown["provisional"]
        assert cli_json(str(tmp_path / "cal2.db"), "calendar", "--year", "2027")["covered_by"] == "reference file"
    finally:
        runtime.close()


def _handled_at(run: Desk, day: str) -> str:
    tid = str(run("report", f"{day}T09:50:00+08:00", {"role": "supervisor", "id": "s"}, grid="ca-g01",
                  category="appearance", channel="patrol", description="x").ticket_id)
    run("accept", f"{day}T09:55:00+08:00", ticket_id=tid)
    run("dispatch", f"{day}T10:00:00+08:00", ticket_id=tid)
    return tid


def test_the_holiday_table_in_force_is_the_databases_and_a_change_is_explicit(rt: Runtime, tmp_path: Path) -> None:
    from dispatch.adapters import holiday_table
    from dispatch.domain.calendar import HolidayTable
    from dispatch.service import holiday_admin

    stored = holiday_table.load(rt.engine)
    assert stored is not None and stored.fingerprint() == rt.reference.holidays.fingerprint()
    run = Desk(rt)
    _handled(run)  # dispatched Mon 10-12 with the table in force
    # a table that makes Mon 10-12 a holiday rewrites a covered year: refused without --force
    changed = HolidayTable({**stored.days, datetime(2026, 10, 12).date(): False}, stored.years, "test table")
    with pytest.raises(DispatchError, match="--force"):
        holiday_admin.update(rt, table=changed)
    assert holiday_admin.update(rt, table=changed, force=True)["changed"]
    assert holiday_table.load(rt.engine).fingerprint() == changed.fingerprint()  # type: ignore[union-attr]
    fresh = _runtime(tmp_path)  # the same database opened again: the stored table, not the package's
    try:
        assert fresh.reference.holidays.fingerprint() == changed.fingerprint()
        assert holiday_admin.affected_calls(fresh)["affected_calls"] == 2  # both calls of that dispatch
    finally:
        fresh.close()


# -- case numbers -------------------------------------------------------------------------------

def test_case_numbers_count_per_street_and_day_and_name_the_ticket_at_every_step(rt: Runtime) -> None:
    run = Desk(rt)
    first, second = run.report("10-12 09:00"), run.report("10-12 23:59")
    next_day = run.report("10-13 00:01")
    numbers = [queries.show(rt, t)["case_no"] for t in (first, second, next_day)]
    assert numbers == ["S1-20261012-00001", "S1-20261012-00002", "S1-20261013-00001"]
    case = numbers[1]
    run("accept", "10-13 09:00", ticket_id=case)
    run("dispatch", "10-13 09:05", ticket_id=case.lower())  # as typed on a phone
    run("acknowledge", "10-13 09:10", dept("chengguan"), ticket_id=case, department="chengguan")
    run("handle", "10-13 09:20", dept("chengguan"), ticket_id=case, department="chengguan")
    run("feedback", "10-13 09:30", ticket_id=case)
    run("evaluate", "10-13 09:40", RESIDENT, ticket_id=case, satisfaction="satisfied", resolved=True)
    run("close", "10-13 09:50", ticket_id=case)
    run("mark_duplicate", "10-13 10:00", ticket_id=numbers[2], original_id=numbers[0])
    assert queries.show(rt, case)["status"] == "closed"
    assert queries.show(rt, second[:8])["case_no"] == case  # a unique id prefix names it too
    assert queries.show(rt, numbers[2])["duplicate_of"] == first
    run.refused("ticket_not_found", "accept", "10-13 10:00", ticket_id="S1-20261012-00099")
    db = str(rt.db.url.database)
    assert cli_json(db, "show", case)["ticket_id"] == second
    rebuilt = cli_json(db, "replay", "--verify", "--no-progress")  # a replay reproduces every number
    assert all(t["ok"] for t in rebuilt["verification"]["tables"])


def test_a_case_number_is_indexed_in_the_transaction_that_stores_its_report(rt: Runtime) -> None:
    # the number → ticket index is written with the events, not after them: a batch whose events
    # are not stored (here another consumer moved the position meanwhile) leaves no index row
    from sqlalchemy import text

    from dispatch.adapters.eventstore import FencedTracking
    from dispatch.domain.errors import ConcurrentChange

    def indexed() -> dict[str, str]:
        with rt.engine.connect() as conn:
            return dict(conn.execute(text("SELECT case_no, ticket_id FROM case_tickets")).all())

    assert rt.case_numbers is not None and rt.case_numbers.with_events
    first = Desk(rt).report("10-12 09:00")
    assert indexed() == {"S1-20261012-00001": first}
    report = parse_command({"type": "report", "command_id": "late-1", "occurred_at": "2026-10-12T10:00:00+08:00",
                            "actor": {"role": "supervisor", "id": "sup-1"}, "grid": "ca-g01",
                            "category": "appearance", "channel": "patrol", "description": "x"})
    with pytest.raises(ConcurrentChange):  # the stored position is not the one this batch started after
        rt.app.execute_batch([report], tracking=FencedTracking("intake:0", 10, 5))
    assert indexed() == {"S1-20261012-00001": first}  # the number drawn for it is a gap, not an entry
    again = rt.app.execute_batch([report], tracking=FencedTracking("intake:0", 10, None))[0]
    assert indexed() == {"S1-20261012-00001": first, "S1-20261012-00003": str(again.ticket_id)}
    assert queries.show(rt, "S1-20261012-00003")["ticket_id"] == str(again.ticket_id)


def test_case_numbers_are_unique_across_engine_processes_reporting_at_once(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path, name="two.db")
    runtime.close()
    script = (
        "import sys\n"
        "from dispatch.bootstrap import bootstrap\nfrom dispatch.domain.commands import parse_command\n"
        "rt = bootstrap(sys.argv[1], create=False)\n"
        "for i in range(15):\n"
        "    rt.app.execute(parse_command({'type': 'report', 'occurred_at': '2026-10-12T09:00:00+08:00',"
        " 'actor': {'role': 'supervisor', 'id': 's'}, 'grid': 'ca-g01', 'category': 'appearance',"
        " 'channel': 'patrol', 'description': sys.argv[2] + str(i)}))\n"
        "rt.close()\n")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "two.db"), name])
             for name in ("a", "b")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    runtime = _runtime(tmp_path, name="two.db")
    try:
        numbers = [r["case_no"] for r in queries.tickets(runtime, limit=100)]
    finally:
        runtime.close()
    assert len(numbers) == 30 and sorted(numbers) == [f"S1-20261012-{n:05d}" for n in range(1, 31)]


def test_a_ticket_reported_before_case_numbers_gets_a_deterministic_legacy_number(rt: Runtime) -> None:
    from dispatch.domain.upcasting import upcast_data
    from dispatch.projections.apply_events import apply_records
    from dispatch.projections.records import EventRecord

    tid = UUID("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
    data = {"occurred_at": datetime(2026, 10, 12, 9, 0, tzinfo=SH), "actor": {"role": "supervisor", "id": "s"},
            "command_id": None, "grid": "ca-g01", "community": "ca", "street": "s1", "district": "d1",
            "category": "appearance", "priority": "normal", "channel": "patrol", "description": "old",
            "location": None, "external_ref": None}  # a v1 report: no case number, no centre deadlines
    upcast_data("Reported", data)
    assert data["case_no"] is None and data["accept_due"] is None
    apply_records(rt.engine, [EventRecord(10_000, tid, 1, "Reported", data)], source="test", position=1)
    row = queries.tickets(rt, limit=5)[0]
    assert row["case_no"] == "S1-20261012-X0F1E2D"
    assert queries.resolve_ticket(rt, "s1-20261012-x0f1e2d") == tid


# -- extensions and holds -----------------------------------------------------------------------

def test_an_extension_is_asked_by_the_lead_and_granted_or_refused_by_the_centre(rt: Runtime) -> None:
    run = Desk(rt)
    tid = run.report("10-12 09:30")
    run("accept", "10-12 09:35", ticket_id=tid)
    run("dispatch", "10-12 10:00", ticket_id=tid)  # handle by 10-13 10:00 (360 + 90), feedback by 10-14 10:00
    run("acknowledge", "10-12 10:30", dept("chengguan"), ticket_id=tid, department="chengguan")
    run.refused("not_lead_department", "request_extension", "10-12 11:00", dept("huanwei"), ticket_id=tid,
                department="huanwei", minutes=120, reason="x")
    run("request_extension", "10-12 11:00", dept("chengguan"), ticket_id=tid, department="chengguan",
        minutes=120, reason="等待配件")
    assert queries.show(rt, tid)["extension"]["minutes"] == 120
    run.refused("extension_pending", "request_extension", "10-12 11:05", dept("chengguan"), ticket_id=tid,
                department="chengguan", minutes=60, reason="again")
    run("decide_extension", "10-12 11:30", ticket_id=tid, approve=True)
    shown = queries.show(rt, tid)  # 120 working minutes later: 10-13 12:00, feedback 10-14 12:00
    assert (shown["handle_due"], shown["feedback_due"], shown["extension"]) == (
        datetime(2026, 10, 13, 12, 0, tzinfo=SH), datetime(2026, 10, 14, 12, 0, tzinfo=SH), None)
    todo = queries.inbox(rt, "chengguan", now=datetime(2026, 10, 13, 11, 0, tzinfo=SH))
    assert [(r["state"], r["due"], r["minutes_left"]) for r in todo] == [
        ("to_handle", datetime(2026, 10, 13, 12, 0, tzinfo=SH), 60.0)]
    run.refused("no_extension_pending", "decide_extension", "10-12 11:40", ticket_id=tid, approve=True)
    run("request_extension", "10-12 14:00", dept("chengguan"), ticket_id=tid, department="chengguan",
        minutes=900, reason="再延")
    run.refused("illegal_transition", "decide_extension", "10-12 14:10", ticket_id=tid, approve=False)
    run("decide_extension", "10-12 14:10", ticket_id=tid, approve=False, reason="不符合延期条件")
    assert queries.show(rt, tid)["handle_due"] == datetime(2026, 10, 13, 12, 0, tzinfo=SH)
    run("request_extension", "10-12 15:00", dept("chengguan"), ticket_id=tid, department="chengguan",
        minutes=60, reason="又缺材料")
    assert [t["extension_minutes"] for t in queries.tickets(rt, extension_pending=True)] == [60]
    run("handle", "10-12 16:00", dept("chengguan"), ticket_id=tid, department="chengguan")  # done after all
    assert queries.show(rt, tid)["extension"] is None and queries.tickets(rt, extension_pending=True) == []


def test_a_hold_stops_the_clocks_and_a_resume_moves_every_open_deadline_by_the_working_time_held(
        rt: Runtime) -> None:
    run = Desk(rt)
    tid = run.report("10-12 09:30")
    run("accept", "10-12 09:35", ticket_id=tid)
    run("dispatch", "10-12 10:00", ticket_id=tid)  # report in by 11:00, handle by 10-13 10:00
    run.refused("not_on_hold", "resume", "10-12 10:20", ticket_id=tid)
    run("hold", "10-12 10:30", ticket_id=tid, reason="等待产权单位确认")
    run.refused("already_on_hold", "hold", "10-12 10:40", ticket_id=tid, reason="again")
    at_two = datetime(2026, 10, 12, 14, 0, tzinfo=SH)
    assert queries.overdue(rt, now=at_two) == [] and Watchdog(rt).tick(at_two) == []
    held = queries.inbox(rt, "chengguan", now=at_two)[0]
    assert held["held"] and held["minutes_left"] == 30.0  # frozen at the hold: 10:30 → 11:00
    # held 10-12 10:30 → 10-13 09:00: 90 + 240 + 30 = 360 working minutes
    run("resume", "10-13 09:00", ticket_id=tid)
    shown = queries.show(rt, tid)
    # report in: 10-12 11:00 + 360 = 60 + 240 + 60 → 10-13 09:30; handle: 10-13 10:00 + 360 → 17:30 that day
    assert [c["ack_due"] for c in shown["calls"]] == [datetime(2026, 10, 13, 9, 30, tzinfo=SH)] * 2
    assert shown["handle_due"] == datetime(2026, 10, 13, 17, 30, tzinfo=SH)
    late = queries.overdue(rt, now=datetime(2026, 10, 13, 9, 40, tzinfo=SH))
    assert [(r["department"], r["deadline"], r["minutes_late"]) for r in late] == [
        ("chengguan", "ack", 10.0), ("huanwei", "ack", 10.0)]


def test_every_command_names_its_ticket_by_case_number(rt: Runtime) -> None:
    from dispatch.service.actions import COMMANDS

    run = Desk(rt)
    bodies: dict[str, dict[str, Any]] = {
        "first_contact": {"mode": "explain"}, "acknowledge": {"department": "chengguan"},
        "reject": {"department": "chengguan", "reason": "x"}, "handle": {"department": "chengguan"},
        "evaluate": {"satisfaction": "satisfied", "resolved": True}, "cancel": {"reason": "x"},
        "request_extension": {"department": "chengguan", "minutes": 60, "reason": "x"},
        "decide_extension": {"approve": True}, "hold": {"reason": "x"}, "mark_duplicate": {}}
    for n, verb in enumerate(sorted(set(COMMANDS) - {"report"})):
        tid = run.report(f"10-12 09:{n:02d}")
        case_no = queries.show(rt, tid)["case_no"]
        fields = dict(bodies.get(verb, {}))
        if verb == "mark_duplicate":
            fields["original_id"] = queries.show(rt, run.report(f"10-12 10:{n:02d}"))["case_no"]
        try:
            run(verb, f"10-12 11:{n:02d}", dept("chengguan") if "department" in fields else CENTRE,
                ticket_id=case_no, **fields)
        except DispatchError as refused:  # refused for the ticket's state, never for its name
            assert refused.code not in ("ticket_not_found", "invalid_command"), (verb, str(refused))
