"""A department's inbox and the overdue list, without Kafka, against hand-computed times.

Monday 2026-10-12 (a working day; hours 08:30-12:00, 13:30-17:30), the clock at 14:00:
  T1 市容 (lead 城管, cooperating 环卫) normal, dispatched 10:00: report in by 11:00, handle by
     10-13 10:00 (360 + 90 working minutes); 城管 reported in at 10:30.
  T2 环卫 (lead 环卫) normal, in 乙社区, dispatched 11:00: report in by 12:00, handle by 10-13 11:00.
  T3 市容 urgent (calendar time), dispatched 10:00: report in by 10:30, handle by 14:00.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from dispatch.domain.clock import SimulatedClock
from dispatch.service import queries
from tests.unit.test_projections import _runtime
from tests.unit.test_sla_scenario import Story, cli_json

NOW = datetime.fromisoformat("2026-10-12T14:00:00+08:00")


def _story(tmp_path: Path):  # type: ignore[no-untyped-def]
    runtime = _runtime(tmp_path / "w.db")
    s = Story(runtime)
    s.intake("T1", "10-12 09:30", "ca-g01", "appearance", "patrol", "10-12 10:00")
    s.do("T1", "acknowledge", "10-12 10:30", department="chengguan")
    s.intake("T2", "10-12 10:30", "cb-g01", "sanitation", "patrol", "10-12 11:00")
    s.intake("T3", "10-12 09:30", "ca-g02", "appearance", "hotline", "10-12 10:00", priority="urgent")
    return runtime, s.ids


def test_a_departments_inbox_lists_what_it_still_owes_soonest_first(tmp_path: Path) -> None:
    runtime, ids = _story(tmp_path)
    try:
        chengguan = queries.inbox(runtime, "城管", now=NOW)
        assert [(r["ticket_id"], r["role"], r["state"], r["minutes_left"]) for r in chengguan] == [
            (ids["T3"], "lead", "waiting", -210.0),  # calendar time: 10:30 → 14:00
            (ids["T1"], "lead", "to_handle", 300.0),  # 14:00-17:30 and 08:30-10:00 the next day
        ]
        huanwei = queries.inbox(runtime, "huanwei", now=NOW)
        assert [(r["ticket_id"], r["role"], r["minutes_left"]) for r in huanwei] == [
            (ids["T3"], "cooperating", -210.0),
            (ids["T1"], "cooperating", -90.0),  # 11:00-12:00 and 13:30-14:00
            (ids["T2"], "lead", -30.0),  # 13:30-14:00: lunch is not working time
        ]
        assert queries.inbox(runtime, "shizheng", now=NOW) == []
    finally:
        runtime.close()


def test_the_overdue_list_says_what_is_late_by_how_much(tmp_path: Path) -> None:
    runtime, ids = _story(tmp_path)
    try:
        late = queries.overdue(runtime, now=NOW)
        assert [(r["ticket_id"], r["department"], r["deadline"], r["minutes_late"], r["level"]) for r in late] == [
            (ids["T3"], "chengguan", "ack", 210.0, "grid"),
            (ids["T3"], "huanwei", "ack", 210.0, "grid"),
            (ids["T1"], "huanwei", "ack", 90.0, "grid"),
            (ids["T2"], "huanwei", "ack", 30.0, "grid"),
        ]  # T3's handling is due at 14:00 exactly: not late yet
        assert [r["ticket_id"] for r in queries.overdue(runtime, community="乙社区", now=NOW)] == [ids["T2"]]
        assert {r["department"] for r in queries.overdue(runtime, department="城管", now=NOW)} == {"chengguan"}
        assert queries.overdue(runtime, street="s1", now=NOW) == late
    finally:
        runtime.close()


def test_the_cli_lists_the_same_work_at_its_clock(tmp_path: Path) -> None:
    runtime, ids = _story(tmp_path)
    db = str(tmp_path / "w.db")
    runtime.clock = SimulatedClock(NOW)
    try:
        expected = {r["ticket_id"] for r in queries.inbox(runtime, "huanwei")}
    finally:
        runtime.close()
    # the CLI's clock is the machine's (weeks later): the same calls, all of them late by now
    rows = cli_json(db, "inbox", "--dept", "环卫")
    assert {r["ticket_id"] for r in rows} == expected
    assert all(r["minutes_left"] < 0 for r in rows)
    late = [(r["ticket_id"], r["deadline"]) for r in cli_json(db, "overdue", "--dept", "环卫")]
    assert sorted(late) == sorted([(ids["T1"], "ack"), (ids["T2"], "ack"), (ids["T3"], "ack"), (ids["T2"], "handle")])
