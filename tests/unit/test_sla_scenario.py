"""A month of work orders around National Day 2026, and the figures it must produce.

Two communities (甲 ca, 乙 cb) in one street, three departments (城管 chengguan, 环卫 huanwei,
市政 shizheng), 26 tickets. Normal tickets run on working time (08:30-12:00, 13:30-17:30 = 450
minutes a day; 2026-10-01..07 are holidays, Saturday 2026-10-10 is a 调休 working day, Sunday
10-11 is off); urgent ones on calendar time. Every expected figure below is worked out by hand
in the comments — none is computed by the code under test.

SLA: normal  ack 60 / handle 450 / feedback 900 working minutes;
     urgent  ack 30 / handle 240 / feedback 480 calendar minutes.
The centre's own (from the report): normal accept 10 / dispatch 20 working minutes; urgent 15 / 30
calendar minutes. Its intake accepts 15 minutes before each dispatch.
Deadlines by dispatch time (worked by hand):
  W1  Wed 09-30 09:00  ack 10:00, handle 10-08 09:00 (420 on 09-30, holidays, +30),
                       feedback 10-09 09:00 (420 + 450 on 10-08 + 30)
  W1' Wed 09-30 10:00  ack 11:00, handle 10-08 10:00 (360 + 90), feedback 10-09 10:00
  R3  Thu 10-08 13:30  ack 14:30, handle 10-09 12:00 (240 + 210), feedback 10-10 12:00 (调休 Sat)
  W2  Fri 10-09 16:30  ack 17:30, handle Sat 10-10 16:30 (60 + 210 + 180),
                       feedback Mon 10-12 16:30 (60 + 450 Sat + 390 Mon)
  W3  Mon 10-12 10:00  ack 11:00, handle 10-13 10:00 (360 + 90), feedback 10-14 10:00
  R10 Mon 10-12 11:00  ack 12:00, handle 10-13 11:00 (300 + 150), feedback 10-14 11:00
  W4  Wed 10-14 10:10  ack 11:10, handle 10-15 10:10 (350 + 100), feedback 10-16 10:10
  U   Sat 10-03 10:00 (a holiday, urgent = calendar time) ack 10:30, handle 14:00, feedback 18:00
Everything is read as of Fri 2026-10-16 12:00, when every deadline above has passed.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from dispatch.bootstrap import Runtime, bootstrap
from dispatch.domain.commands import parse_command

REFERENCE = {
    "sample": False,
    "timezone": "Asia/Shanghai",
    "working_hours": ["08:30-12:00", "13:30-17:30"],
    "districts": [{"id": "d1", "name": "东区", "streets": [{"id": "s1", "name": "东街道", "communities": [
        {"id": "ca", "name": "甲社区", "grid_count": 2}, {"id": "cb", "name": "乙社区", "grid_count": 2}]}]}],
    "departments": [{"id": "chengguan", "name": "城管"}, {"id": "huanwei", "name": "环卫"},
                    {"id": "shizheng", "name": "市政"}],
    "priorities": [{"id": "normal", "name": "一般"}, {"id": "urgent", "name": "紧急"}],
    "categories": [
        {"id": "appearance", "name": "市容环卫", "kind": "grid", "lead_department": "chengguan",
         "cooperating": ["huanwei"]},
        {"id": "sanitation", "name": "环卫环保", "kind": "grid", "lead_department": "huanwei"},
        {"id": "facilities", "name": "公共设施", "kind": "grid", "lead_department": "shizheng"},
    ],
    "sla": [
        {"category": "*", "priority": "*", "ack_minutes": 60, "handle_minutes": 450, "feedback_minutes": 900,
         "time_basis": "working", "escalate_every_minutes": 120, "accept_minutes": 10, "dispatch_minutes": 20},
        {"category": "*", "priority": "urgent", "ack_minutes": 30, "handle_minutes": 240,
         "feedback_minutes": 480, "time_basis": "calendar", "escalate_every_minutes": 60, "accept_minutes": 15,
         "dispatch_minutes": 30},
    ],
}
AS_OF = "2026-10-16T12:00:00+08:00"
CENTRE = {"role": "centre", "id": "centre-1"}


class Story:
    """Drives the application with commands, one ticket at a time."""

    def __init__(self, runtime: Runtime):
        self.runtime, self.ids, self.n = runtime, {}, 0

    def _run(self, body: dict[str, Any]) -> Any:
        self.n += 1
        return self.runtime.app.execute(parse_command({"command_id": f"c{self.n}", **body}))

    def at(self, when: str) -> str:
        return f"2026-{when}:00+08:00"

    def report(self, name: str, when: str, grid: str, category: str, channel: str, priority: str = "normal") -> None:
        out = self._run({"type": "report", "occurred_at": self.at(when), "grid": grid, "category": category,
                         "channel": channel, "priority": priority, "description": name,
                         "actor": {"role": "supervisor", "id": "sup-1"}})
        self.ids[name] = str(out.ticket_id)

    def do(self, name: str, kind: str, when: str, **fields: Any) -> None:
        actor = CENTRE
        if "department" in fields:
            actor = {"role": "department", "id": f"{fields['department']}-1", "department": fields["department"]}
        if kind == "evaluate":
            actor = {"role": "resident", "id": "r-1"}
        self._run({"type": kind, "ticket_id": self.ids[name], "occurred_at": self.at(when), "actor": actor,
                   **fields})

    def intake(self, name: str, reported: str, grid: str, category: str, channel: str, dispatched: str,
               priority: str = "normal") -> None:
        """Report, accept 15 minutes before the dispatch, dispatch by category."""
        self.report(name, reported, grid, category, channel, priority)
        day, hhmm = dispatched.split(" ")
        h, m = map(int, hhmm.split(":"))
        self.do(name, "accept", f"{day} {h - 1 if m < 15 else h:02d}:{(m - 15) % 60:02d}")
        self.do(name, "dispatch", dispatched)

    def close_loop(self, name: str, dept: str, handled: str, satisfaction: str, evaluated: str, *,
                   resolved: bool = True, contacted: bool = True, closed: str | None = None,
                   override: str = "") -> None:
        self.do(name, "handle", handled, department=dept)
        self.do(name, "feedback", handled, contacted=contacted)
        self.do(name, "evaluate", evaluated, satisfaction=satisfaction, resolved=resolved, contacted=contacted)
        if closed:
            self.do(name, "close", closed, **({"override": override} if override else {}))


def play(runtime: Runtime) -> dict[str, str]:
    s = Story(runtime)
    # times are "MM-DD HH:MM", local (UTC+8), in 2026
    # --- 甲社区 ca: sanitation (lead 环卫 huanwei only), dispatched W1 (Wed 09-30 09:00) ---
    for name, grid, channel in (("A1", "ca-g01", "patrol"), ("A2", "ca-g01", "patrol"), ("A3", "ca-g01", "hotline"),
                                ("A4", "ca-g01", "patrol"), ("A5", "ca-g02", "patrol"), ("A6", "ca-g02", "video")):
        s.intake(name, ("09-30 08:30"), grid, "sanitation", channel, "09-30 09:00")
    # A1: ack 09:20 (20 min, on time); handled 09-30 16:00 (180+150 = 330, on time); satisfied.
    s.do("A1", "acknowledge", "09-30 09:20", department="huanwei")
    s.close_loop("A1", "huanwei", "09-30 16:00", "satisfied", "10-08 10:00", closed="10-08 10:05")
    # A2: ack 10:30 (90, late); handled during the holiday 10-05 10:00 (420 working min, on time).
    s.do("A2", "acknowledge", "09-30 10:30", department="huanwei")
    s.close_loop("A2", "huanwei", "10-05 10:00", "basically_satisfied", "10-08 10:00", closed="10-08 10:05")
    # A3: ack 17:00 (180+210 = 390, late); handled 10-08 10:00 (420+90 = 510, late); unsatisfied,
    # reopened, redispatched R3 10-08 13:30; ack 14:00 (30, on time); handled 10-09 11:00 (240+150 = 390,
    # on time); evaluated satisfied 10-09 15:00 (its latest evaluation); closed.
    s.do("A3", "acknowledge", "09-30 17:00", department="huanwei")
    s.close_loop("A3", "huanwei", "10-08 10:00", "unsatisfied", "10-08 11:00", resolved=False)
    s.do("A3", "reopen", "10-08 11:30", reason="still dirty")
    s.do("A3", "dispatch", "10-08 13:30")
    s.do("A3", "acknowledge", "10-08 14:00", department="huanwei")
    s.close_loop("A3", "huanwei", "10-09 11:00", "satisfied", "10-09 15:00", closed="10-09 15:10")
    # A4: ack after the holiday 10-08 08:40 (420+10 = 430, late); handled 08:50 (440, on time);
    # the reporter was not contacted.
    s.do("A4", "acknowledge", "10-08 08:40", department="huanwei")
    s.close_loop("A4", "huanwei", "10-08 08:50", "satisfied", "10-08 10:00", contacted=False, closed="10-08 10:05")
    # A5: 环卫 rejects 09:30 (answered on time, a rejection); redispatched W1' to 城管 10:00;
    # ack 10:30 (30, on time); handled 10-08 09:30 (360+60 = 420, on time).
    s.do("A5", "reject", "09-30 09:30", department="huanwei", reason="not sanitation")
    s.do("A5", "dispatch", "09-30 10:00", lead="chengguan", cooperating=[])
    s.do("A5", "acknowledge", "09-30 10:30", department="chengguan")
    s.close_loop("A5", "chengguan", "10-08 09:30", "satisfied", "10-08 10:00", closed="10-08 10:05")
    # A6: ack 09:50 (50, on time), never handled (due 10-08 09:00): handling overdue; the centre
    # escalates it by hand to the community on 10-08 10:00.
    s.do("A6", "acknowledge", "09-30 09:50", department="huanwei")
    s.do("A6", "escalate", "10-08 10:00", reason="press the department")

    # --- ca: appearance (lead 城管 + cooperating 环卫), dispatched W2 (Fri 10-09 16:30) ---
    for name, grid, channel in (("A7", "ca-g02", "hotline"), ("A8", "ca-g02", "hotline"),
                                ("A9", "ca-g01", "online"), ("A10", "ca-g01", "online")):
        s.intake(name, ("10-09 16:00"), grid, "appearance", channel, "10-09 16:30")
    # A7: 城管 ack 17:00 (30, on time); 环卫 ack on the 调休 Saturday 09:00 (60+30 = 90, late);
    # 城管 handled Sat 16:00 (60+210+150 = 420, on time).
    s.do("A7", "acknowledge", "10-09 17:00", department="chengguan")
    s.do("A7", "acknowledge", "10-10 09:00", department="huanwei")
    s.close_loop("A7", "chengguan", "10-10 16:00", "satisfied", "10-12 09:00", closed="10-12 09:05")
    # A8: 环卫 ack 17:00 (30, on time); 城管 ack Sat 09:00 (90, late); handled Mon 09:00
    # (60 + 450 Sat + 0 Sun + 30 = 540, late).
    s.do("A8", "acknowledge", "10-09 17:00", department="huanwei")
    s.do("A8", "acknowledge", "10-10 09:00", department="chengguan")
    s.close_loop("A8", "chengguan", "10-12 09:00", "basically_satisfied", "10-12 10:00", closed="10-12 10:05")
    # A9: 城管 ack 16:45 (15, on time); 环卫 rejects 17:10 (on time, rejected); handled Sat 11:00
    # (60+150 = 210, on time); unsatisfied and unresolved, but closed without a reopen: the centre's
    # override (the reporter asks for what no department may do).
    s.do("A9", "acknowledge", "10-09 16:45", department="chengguan")
    s.do("A9", "reject", "10-09 17:10", department="huanwei", reason="not ours")
    s.close_loop("A9", "chengguan", "10-10 11:00", "unsatisfied", "10-12 09:00", resolved=False,
                 closed="10-12 09:30", override="诉求超出政策范围，经中心研判办结")
    # A10: nobody answers: two calls acknowledge-overdue, handling overdue (due 10-10 16:30).

    # --- ca: facilities (lead 市政 shizheng), urgent = calendar time, dispatched U (holiday 10-03 10:00) ---
    for name, grid in (("A11", "ca-g01"), ("A12", "ca-g02")):
        s.intake(name, ("10-03 09:30"), grid, "facilities", "online", "10-03 10:00", priority="urgent")
    # A11: ack 10:10 (10, on time); handled 13:00 (180, on time).  A12: ack 10:45 (45, late);
    # handled 15:00 (300, late); evaluated but never closed (feedback due 18:00 passes).
    s.do("A11", "acknowledge", "10-03 10:10", department="shizheng")
    s.close_loop("A11", "shizheng", "10-03 13:00", "satisfied", "10-03 15:00", closed="10-03 15:05")
    s.do("A12", "acknowledge", "10-03 10:45", department="shizheng")
    s.close_loop("A12", "shizheng", "10-03 15:00", "satisfied", "10-03 16:00")

    # --- 乙社区 cb, dispatched W3 (Mon 10-12 10:00) ---
    # B1..B8: facilities, ack 10:15 (15, on time), handled 15:00 (120+90 = 210, on time), satisfied.
    for i in range(1, 9):
        name = f"B{i}"
        s.intake(name, ("10-12 09:30"), "cb-g01", "facilities", "patrol", "10-12 10:00")
        s.do(name, "acknowledge", "10-12 10:15", department="shizheng")
        s.close_loop(name, "shizheng", "10-12 15:00", "satisfied", "10-13 09:00", closed="10-13 09:10")
    # B9: sanitation; ack 11:30 (90, late); handled 10-13 11:00 (360+150 = 510, late); basically satisfied.
    s.intake("B9", ("10-12 09:30"), "cb-g02", "sanitation", "video", "10-12 10:00")
    s.do("B9", "acknowledge", "10-12 11:30", department="huanwei")
    s.close_loop("B9", "huanwei", "10-13 11:00", "basically_satisfied", "10-13 14:00", closed="10-13 14:10")
    # B10: appearance; 环卫 ack 10:20 (20, on time); 城管 (lead) rejects 10:30 (on time, rejected);
    # redispatched R10 to 市政 11:00; ack 11:30 (30, on time); never handled (due 10-13 11:00).
    s.intake("B10", ("10-12 09:30"), "cb-g02", "appearance", "patrol", "10-12 10:00")
    s.do("B10", "acknowledge", "10-12 10:20", department="huanwei")
    s.do("B10", "reject", "10-12 10:30", department="chengguan", reason="a facilities matter")
    s.do("B10", "dispatch", "10-12 11:00", lead="shizheng", cooperating=[])
    s.do("B10", "acknowledge", "10-12 11:30", department="shizheng")
    # B11 accepted only; B12 closed at first contact; B13 dispatched W4, never answered; B14 cancelled.
    s.report("B11", "10-14 09:00", "cb-g01", "sanitation", "hotline")
    s.do("B11", "accept", "10-14 09:10")
    s.report("B12", "10-14 09:30", "cb-g02", "sanitation", "visit")
    s.do("B12", "first_contact", "10-14 09:40", mode="explain")
    s.intake("B13", ("10-14 09:50"), "cb-g01", "facilities", "patrol", "10-14 10:10")
    s.report("B14", "10-14 11:00", "cb-g02", "facilities", "hotline")
    s.do("B14", "cancel", "10-14 11:05", reason="reported by mistake")
    return s.ids


@pytest.fixture
def db_url(tmp_path: Path) -> Iterator[str]:
    ref = tmp_path / "reference.yaml"
    ref.write_text(yaml.safe_dump(REFERENCE, allow_unicode=True), encoding="utf-8")
    url = str(tmp_path / "scenario.db")
    runtime = bootstrap(url, reference_file=ref)
    try:
        play(runtime)
    finally:
        runtime.close()
    yield url


def cli_json(db_url: str, *args: str) -> Any:
    with warnings.catch_warnings():
        # kafka-python (imported by the CLI's kafka commands) calls importlib.resources.open_text,
        # deprecated; setup.cfg's "kafka.*" filter does not match where that warning is raised.
        warnings.simplefilter("ignore", DeprecationWarning)
        from dispatch.cli import main
    result = CliRunner().invoke(main, ["--db", db_url, "--json", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def rows_by(data: dict[str, Any], key: str) -> dict[str, dict[str, Any]]:
    return {row[key]: row for row in data["rows"]}


# --------------------------------------------------------------------------------------------
# SLA by department, all time, as of 10-16 12:00
# --------------------------------------------------------------------------------------------
# 环卫 huanwei, 13 calls: A1 A2 A3 A3' A4 A5 A6 (lead), A7c A8c A9c A10c (cooperating), B9, B10c.
#   answered 12 (A10c never), rejected 2 (A5, A9c).
#   on time: A1 A3' A5(rej) A6 A8c A9c(rej) B10c = 7; judged = 12 answered + A10c past due = 13.
#   MTTA (acknowledged): 20 90 390 30 430 50 90 30 90 20 -> sorted 20 20 30 30 50 90 90 90 390 430,
#   sum 1240, mean 124; p50 = 5th = 50; p90 = 9th = 390.
#   handling (lead, not rejected): A1 A2 A3 A3' A4 A6 B9 = 7; on time A1 A2 A3' A4 = 4; late A3 B9, A6 overdue.
#   MTTH 330 420 510 390 440 510 -> sum 2600, mean 433.33; sorted 330 390 420 440 510 510: p50 = 3rd = 420,
#   p90 = ⌈5.4⌉ = 6th = 510.
#   closing (latest lead 环卫): A1 A2 A4 by 10-09 09:00 ✓, A3 by 10-10 12:00 ✓, B9 by 10-14 10:00 ✓, A6 open
#   and past 10-09 09:00 ✗ -> 5/6.
#   evaluations handled by 环卫, latest: A1 sat, A2 basic, A3 sat, A4 sat (not contacted), B9 basic -> 5:
#   response 4/5, resolution 5/5, satisfaction (3 + 0.9·2)/5 = 0.96, composite 0.08+0.5+0.384 = 0.964;
#   reopen: A3 of 5 tickets evaluated = 0.2.
# 城管 chengguan, 6 calls: A5' A7 A8 A9 A10 (lead), B10 (lead, rejected).
#   answered 5, rejected 1; on time A5' A7 A9 B10(rej) = 4 of 6 judged (A10 past due).
#   MTTA 30 30 90 15 -> mean 41.25, p50 = 2nd of 15 30 30 90 = 30, p90 = 4th = 90.
#   handling: A5' A7 A8 A9 A10 = 5 (B10 rejected: no obligation); on time A5' A7 A9 = 3 -> 0.6.
#   MTTH 420 420 540 210 -> mean 397.5, p50 = 2nd of 210 420 420 540 = 420, p90 = 540.
#   closing: A5 (by 10-09 10:00) A7 A8 A9 (by 10-12 16:30) ✓, A10 ✗ -> 4/5.
#   evaluations: A5 sat, A7 sat, A8 basic, A9 unsat+unresolved -> response 1, resolution 0.75,
#   satisfaction 2.9/4 = 0.725, composite 0.1+0.375+0.29 = 0.765; reopen 0/4.
# 市政 shizheng, 12 calls: A11 A12 B1..B8 B10' B13 (all lead, none rejected).
#   answered 11, on time A11 B1..B8 B10' = 10; judged 12 (B13 past due) -> 10/12.
#   MTTA 10 45 15×8 30 -> sum 205, mean 18.636; sorted 10 15×8 30 45: p50 = 6th = 15, p90 = ⌈9.9⌉ = 10th = 30.
#   handling: 12 lead calls; handled A11 ✓ A12 ✗ B1..B8 ✓; B10' and B13 overdue -> 9/12.
#   MTTH 180 300 210×8 -> sum 2160, mean 216; p50 = 5th = 210, p90 = 9th = 210.
#   closing: A11 ✓, B1..B8 ✓ = 9; A12 (evaluated, never closed), B10, B13 ✗ -> 9/12.
#   evaluations: A11 A12 B1..B8 all satisfied, resolved, contacted -> 10, every rate 1.0.
DEPARTMENTS = {
    "huanwei": dict(dispatched=13, answered=12, rejected=2, ack_on_time=7, ack_late=6, ack_pending=0,
                    ack_on_time_rate=7 / 13, rejection_rate=2 / 12, dispatch_accuracy=11 / 13,
                    mtta_minutes_mean=124.0, mtta_minutes_p50=50.0, mtta_minutes_p90=390.0,
                    lead_calls=7, handle_on_time=4, handle_on_time_rate=4 / 7,
                    mtth_minutes_mean=2600 / 6, mtth_minutes_p50=420.0, mtth_minutes_p90=510.0,
                    close_on_time_rate=5 / 6, evaluated=5, response_rate=0.8, resolution_rate=1.0,
                    satisfaction_rate=0.96, composite=0.964, reopen_rate=0.2),
    "chengguan": dict(dispatched=6, answered=5, rejected=1, ack_on_time=4, ack_on_time_rate=4 / 6,
                      rejection_rate=0.2, dispatch_accuracy=5 / 6, mtta_minutes_mean=41.25,
                      mtta_minutes_p50=30.0, mtta_minutes_p90=90.0, lead_calls=5, handle_on_time_rate=0.6,
                      mtth_minutes_mean=397.5, mtth_minutes_p50=420.0, mtth_minutes_p90=540.0,
                      close_on_time_rate=0.8, evaluated=4, response_rate=1.0, resolution_rate=0.75,
                      satisfaction_rate=0.725, composite=0.765, reopen_rate=0.0),
    "shizheng": dict(dispatched=12, answered=11, rejected=0, ack_on_time_rate=10 / 12, rejection_rate=0.0,
                     dispatch_accuracy=1.0, mtta_minutes_mean=205 / 11, mtta_minutes_p50=15.0,
                     mtta_minutes_p90=30.0, lead_calls=12, handle_on_time_rate=0.75, mtth_minutes_mean=216.0,
                     mtth_minutes_p50=210.0, mtth_minutes_p90=210.0, close_on_time_rate=0.75, evaluated=10,
                     response_rate=1.0, resolution_rate=1.0, satisfaction_rate=1.0, composite=1.0,
                     reopen_rate=0.0),
}


def assert_figures(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    for key, value in expected.items():
        if isinstance(value, float):
            assert actual[key] == pytest.approx(value), key
        else:
            assert actual[key] == value, key


def test_sla_by_department_matches_the_hand_computed_figures(db_url: str) -> None:
    data = cli_json(db_url, "sla", "--by", "department", "--as-of", AS_OF)
    rows = rows_by(data, "department")
    assert set(rows) == set(DEPARTMENTS)
    for dept, expected in DEPARTMENTS.items():
        assert_figures(rows[dept], expected)
    # Scorecard with the default minimum of 5 evaluated tickets: 城管 (4) is not ranked.
    assert [(r["rank"], r["department"]) for r in data["ranking"]] == [(1, "shizheng"), (2, "huanwei")]


def test_figures_as_of_an_earlier_instant_count_only_what_had_happened(db_url: str) -> None:
    # As of 09-30 12:00: 环卫 has 6 calls (A1..A6, 09:00); answered by then A1 09:20 ✓, A2 10:30 ✗,
    # A5 rejected 09:30 ✓, A6 09:50 ✓; A3 and A4 unanswered but past 10:00 -> 3 of 6 on time.
    # Handling is due 10-08: nothing judged yet -> rate null, 5 lead calls pending (A5 was rejected).
    rows = rows_by(cli_json(db_url, "sla", "--by", "department", "--as-of", "2026-09-30T12:00+08:00"), "department")
    assert_figures(rows["huanwei"], dict(dispatched=6, answered=4, ack_on_time_rate=0.5, handle_pending=5,
                                         handle_on_time_rate=None, evaluated=0, satisfaction_rate=None))
    # 城管's A5' was dispatched 10:00 and acknowledged 10:30: 1 of 1.
    assert_figures(rows["chengguan"], dict(dispatched=1, ack_on_time_rate=1.0, mtta_minutes_mean=30.0))
    assert "shizheng" not in rows


def test_weekly_breakdown_puts_each_call_in_the_week_it_was_dispatched(db_url: str) -> None:
    # 环卫 by ISO week: W40 (09-28..10-04) A1..A6: on time A1 A5 A6 = 3/6, no evaluation in W40 -> null;
    # W41 (10-05..10-11) A3' A7c A8c A9c A10c: on time A3' A8c A9c = 3/5; latest evaluations in W41:
    # A1 sat, A2 basic, A3 sat, A4 sat -> (3 + 0.9)/4 = 0.975; evaluated in W41 A1 A2 A3 A4, A3 reopened -> 0.25;
    # W42 (10-12..) B9 ✗ B10c ✓ = 1/2; B9 basic -> 0.9.
    data = cli_json(db_url, "sla", "--by", "department", "--period", "week", "--as-of", AS_OF)
    weeks = {r["period"]: r for r in data["rows"] if r["department"] == "huanwei"}
    assert sorted(weeks) == ["2026-W40", "2026-W41", "2026-W42"]
    assert_figures(weeks["2026-W40"], dict(dispatched=6, ack_on_time_rate=0.5, satisfaction_rate=None))
    assert_figures(weeks["2026-W41"], dict(dispatched=5, ack_on_time_rate=0.6, satisfaction_rate=0.975,
                                           reopen_rate=0.25))
    assert_figures(weeks["2026-W42"], dict(dispatched=2, ack_on_time_rate=0.5, satisfaction_rate=0.9))


# --------------------------------------------------------------------------------------------
# Dashboards
# --------------------------------------------------------------------------------------------
# 甲社区 ca, 12 tickets. As of 10-16 12:00: open A6 in_progress, A10 dispatched, A12 evaluated;
# closed A1..A5 A7 A8 A9 A11 = 9. Acknowledge-overdue calls: A10's two. Handling overdue: A6, A10.
# Categories: sanitation A1..A6 = 6, appearance A7..A10 = 4, facilities A11 A12 = 2.
# Channels: patrol A1 A2 A4 A5 = 4, hotline A3 A7 A8 = 3, video A6 = 1, online A9..A12 = 4.
# One escalation (A6, to the community), and A6 is still open above the grid.
# Latest evaluations: satisfied A1 A3 A4 A5 A7 A11 A12 = 7, basic A2 A8 = 2, unsatisfied A9 = 1;
# contacted 9 (not A4), resolved 9 (not A9): response 0.9, resolution 0.9,
# satisfaction (7 + 1.8)/10 = 0.88, composite 0.09 + 0.45 + 0.352 = 0.892; reopen A3: 1/10.
COMMUNITY_A = dict(open=3, open_by_state={"dispatched": 1, "evaluated": 1, "in_progress": 1}, reported=12,
                   closed=9, ack_overdue=2, handle_overdue=2,
                   by_category={"appearance": 4, "facilities": 2, "sanitation": 6},
                   by_channel={"hotline": 3, "online": 4, "patrol": 4, "video": 1}, escalations=1,
                   escalations_by_level={"community": 1, "street": 0, "district": 0}, open_above_grid=1,
                   evaluated=10, satisfied=7, basically_satisfied=2, unsatisfied=1, response_rate=0.9,
                   resolution_rate=0.9, satisfaction_rate=0.88, composite=0.892, reopen_rate=0.1)
# 乙社区 cb, 14 tickets: open B10 in_progress, B11 accepted, B13 dispatched; closed B1..B9 + B12 = 10
# (B14 cancelled is neither). Ack overdue: B13. Handling overdue: B10' (due 10-13 11:00), B13.
# Evaluated B1..B8 satisfied, B9 basic: satisfaction 8.9/9, composite 0.1 + 0.5 + 0.4·8.9/9.
COMMUNITY_B = dict(open=3, open_by_state={"accepted": 1, "dispatched": 1, "in_progress": 1}, reported=14,
                   closed=10, ack_overdue=1, handle_overdue=2,
                   by_category={"appearance": 1, "facilities": 10, "sanitation": 3},
                   by_channel={"hotline": 2, "patrol": 10, "video": 1, "visit": 1}, escalations=0,
                   evaluated=9, response_rate=1.0, resolution_rate=1.0, satisfaction_rate=8.9 / 9,
                   composite=0.6 + 0.4 * 8.9 / 9, reopen_rate=0.0)


def test_community_dashboard_with_a_per_grid_breakdown(db_url: str) -> None:
    data = cli_json(db_url, "dashboard", "--community", "ca", "--as-of", AS_OF)
    assert_figures(data, COMMUNITY_A)
    grids = {g["grid"]: g for g in data["grids"]}
    # ca-g01: A1 A2 A3 A4 A9 A10 A11 — open A10 only; closed 6; A10's two calls and its handling overdue;
    # evaluated A1 A2 A3 A4 A9 A11: satisfied 4, basic 1, unsatisfied 1 -> (4 + 0.9)/6; contacted 5/6.
    assert_figures(grids["ca-g01"], dict(open=1, closed=6, ack_overdue=2, handle_overdue=1, escalations=0,
                                         evaluated=6, satisfaction_rate=4.9 / 6, response_rate=5 / 6))
    # ca-g02: A5 A6 A7 A8 A12 — open A6 and A12; closed 3; A6 handling overdue and escalated;
    # evaluated A5 A7 A12 satisfied, A8 basic -> 3.9/4.
    assert_figures(grids["ca-g02"], dict(open=2, closed=3, ack_overdue=0, handle_overdue=1, escalations=1,
                                         evaluated=4, satisfaction_rate=3.9 / 4))


def test_street_dashboard_rolls_up_and_ranks_only_communities_with_enough_evaluations(db_url: str) -> None:
    data = cli_json(db_url, "dashboard", "--street", "s1", "--as-of", AS_OF, "--min-evaluated", "5")
    # The street is the sum: 26 reported, 6 open, 19 closed, 3 ack-overdue calls, 4 handling overdue;
    # evaluated 19: satisfied 15, basic 3 -> (15 + 2.7)/19; contacted 18/19, resolved 18/19.
    assert_figures(data, dict(reported=26, open=6, closed=19, ack_overdue=3, handle_overdue=4, escalations=1,
                              evaluated=19, satisfaction_rate=17.7 / 19, response_rate=18 / 19,
                              resolution_rate=18 / 19))
    communities = {c["community"]: c for c in data["communities"]}
    assert_figures(communities["ca"], COMMUNITY_A)
    assert_figures(communities["cb"], COMMUNITY_B)
    # Both have ≥ 5 evaluated: 乙 (0.9956) ranks above 甲 (0.892).
    assert [(r["rank"], r["community"]) for r in data["ranking"]] == [(1, "cb"), (2, "ca")]
    # With a minimum of 10, 乙 (9 evaluated) is left out of the ranking.
    strict = cli_json(db_url, "dashboard", "--street", "s1", "--as-of", AS_OF, "--min-evaluated", "10")
    assert [r["community"] for r in strict["ranking"]] == ["ca"]
    assert strict["unranked"] == [{"community": "cb", "evaluated": 9}]


def test_a_period_counts_what_was_reported_and_closed_in_it(db_url: str) -> None:
    # 10-12 up to and including 10-14: reported B1..B14 = 14 in 乙, closed in it B1..B9 (10-13) and B12 = 10;
    # in 甲, closed 10-12: A7 A8 A9 = 3, reported none.
    b = cli_json(db_url, "dashboard", "--community", "cb", "--from", "2026-10-12", "--to", "2026-10-14",
                 "--as-of", AS_OF)
    assert (b["reported"], b["closed"]) == (14, 10)
    a = cli_json(db_url, "dashboard", "--community", "ca", "--from", "2026-10-12", "--to", "2026-10-14",
                 "--as-of", AS_OF)
    assert (a["reported"], a["closed"]) == (0, 3)


# --------------------------------------------------------------------------------------------
# The centre's own deadlines (按时立案率, 按时派遣率), first contact, cooperation, as of 10-16 12:00
# --------------------------------------------------------------------------------------------
# accept due = report + 10 working min (urgent + 15 calendar); dispatch due = report + 20 (urgent + 30).
#   A1-A6  reported 09-30 08:30: accept by 08:40, accepted 08:45 late; dispatch by 08:50, at 09:00 late.
#   A7-A10 reported 10-09 16:00: accept by 16:10, accepted 16:15 late; dispatch by 16:20, at 16:30 late.
#   A11-12 urgent 10-03 09:30: accept by 09:45, accepted 09:45 on time; dispatch by 10:00, at 10:00 on time.
#   B1-B10 reported 10-12 09:30: accept by 09:40, at 09:45 late; dispatch by 09:50, at 10:00 late.
#   B11 reported 10-14 09:00: accepted 09:10 = its deadline, on time; never dispatched (due 09:20): late.
#   B12 reported 09:30, closed at first contact 09:40 = its accept deadline: on time; no dispatch owed.
#   B13 reported 09:50: accepted 09:55 (by 10:00) on time; dispatched 10:10 (by 10:10) on time.
#   B14 reported 11:00, cancelled 11:05 before its accept deadline 11:10: in neither part.
# 甲 ca: accept 2 on time of 12 (A11 A12), dispatch 2 of 12.
# 乙 cb: accept 3 on time (B11 B12 B13) of 13; dispatch 1 (B13) of 12 (B1-B10, B11 late, B13).
# First contact: B12 (explain), 1 of 14 reported in cb.
# Cooperating calls (all 环卫): A7c late, A8c on time, A9c rejected on time, A10c unanswered late,
# B10c on time -> 3 of 5 on time = 0.6; MTTA of the acknowledged ones 90, 30, 20 -> 46.67.

def test_the_centres_own_deadlines_first_contact_and_cooperation_match_the_hand_computed_figures(
        db_url: str) -> None:
    by_community = rows_by(cli_json(db_url, "sla", "--by", "community", "--as-of", AS_OF), "community")
    ca, cb = by_community["ca"], by_community["cb"]
    assert (ca["accept_on_time"], ca["accept_late"], ca["dispatch_on_time"], ca["dispatch_late"]) == (2, 10, 2, 10)
    assert (cb["accept_on_time"], cb["accept_late"], cb["dispatch_on_time"], cb["dispatch_late"]) == (3, 10, 1, 11)
    assert cb["accept_on_time_rate"] == pytest.approx(3 / 13) and cb["dispatch_on_time_rate"] == pytest.approx(1 / 12)
    board = cli_json(db_url, "dashboard", "--community", "cb", "--as-of", AS_OF)
    assert board["accept_on_time_rate"] == pytest.approx(3 / 13)
    assert board["dispatch_on_time_rate"] == pytest.approx(1 / 12)
    assert board["first_contact"] == 1 and board["first_contact_rate"] == pytest.approx(1 / 14)
    assert board["first_contact_by_mode"]["explain"] == 1
    street = cli_json(db_url, "dashboard", "--street", "s1", "--as-of", AS_OF)
    assert street["accept_on_time_rate"] == pytest.approx(5 / 25)
    assert street["dispatch_on_time_rate"] == pytest.approx(3 / 24)
    departments = cli_json(db_url, "sla", "--by", "department", "--as-of", AS_OF)
    assert [(r["department"], r["judged"], r["ack_on_time_rate"]) for r in departments["cooperation_ranking"]] == [
        ("huanwei", 5, 0.6)]
    assert departments["cooperation_ranking"][0]["mtta_minutes_mean"] == pytest.approx(140 / 3)
    assert "accept_on_time_rate" not in departments["rows"][0]  # a department does not accept or dispatch


def test_the_tickets_export_carries_case_numbers_first_contact_and_the_centres_deadlines(db_url: str) -> None:
    import csv
    import io

    from dispatch.cli import main

    out = CliRunner().invoke(main, ["--db", db_url, "export", "tickets", "--format", "csv"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    rows = list(csv.DictReader(io.StringIO(out.output)))
    assert len(rows) == 26 and len({r["case_no"] for r in rows}) == 26
    assert [(r["closed_via"], r["first_contact_mode"]) for r in rows if r["first_contact_mode"]] == [
        ("first_contact:explain", "explain")]
    assert [r["closed_via"] for r in rows].count("override") == 1  # A9, closed without rework
    b12 = next(r for r in rows if r["first_contact_mode"])
    assert b12["accept_due"] == "2026-10-14T09:40:00+08:00" and b12["accepted_at"] == ""
