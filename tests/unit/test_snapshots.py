"""Snapshots: a ticket with a long history loads from its latest snapshot plus the
events after it, into exactly the state a full replay gives. Configurable with
DISPATCH_SNAPSHOT_EVERY (0 = off)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from dispatch.bootstrap import Runtime, bootstrap
from dispatch.domain.commands import parse_command
from dispatch.domain.errors import DispatchError
from tests.unit.test_replay_helpers import T0


def _long_history(runtime: Runtime) -> UUID:
    """A ticket bounced between departments, held and resumed each time: 40-odd events."""
    at = T0
    actor = {"role": "centre", "id": "c"}

    def run(kind: str, role: dict[str, Any] | None = None, **fields: Any) -> Any:
        nonlocal at
        at += timedelta(minutes=7)
        return runtime.app.execute(parse_command({"type": kind, "occurred_at": at.isoformat(),
                                                  "actor": role or actor, **fields}))

    tid = str(run("report", {"role": "hotline", "id": "h"}, grid="cj-shuiku-g01", category="city_appearance",
                  channel="hotline", description="噪音扰民，反复投诉", external_ref="12345-long").ticket_id)
    run("accept", ticket_id=tid)
    departments = ["chengguan", "huanwei", "zhifa", "shizheng", "wuye", "gongan"]
    for round_, dept in enumerate(departments * 2):
        run("dispatch", ticket_id=tid, lead=dept, cooperating=[])
        run("hold", ticket_id=tid, reason="等待产权单位确认")  # 挂起 and 恢复: the deadlines move
        run("resume", ticket_id=tid)
        run("reject", {"role": "department", "id": "d", "department": dept}, ticket_id=tid, department=dept,
            reason="非本部门职责")
    run("dispatch", ticket_id=tid, lead="chengguan", cooperating=["huanwei"])
    dept = {"role": "department", "id": "d", "department": "chengguan"}
    run("acknowledge", dept, ticket_id=tid, department="chengguan")
    run("handle", dept, ticket_id=tid, department="chengguan", result="已整改")
    run("feedback", ticket_id=tid, message="已回复")
    run("evaluate", {"role": "resident", "id": "r"}, ticket_id=tid, satisfaction="basically_satisfied",
        resolved=True, method="online")
    return UUID(tid)


def test_a_snapshot_plus_later_events_equals_a_full_replay(tmp_path: Path) -> None:
    db = str(tmp_path / "long.db")
    with_snapshots = bootstrap(db, env={"DISPATCH_SNAPSHOT_EVERY": "10"})
    try:
        tid = _long_history(with_snapshots)
        ticket = with_snapshots.app.get_ticket(tid)
        assert with_snapshots.app.snapshots is not None
        snapshots = list(with_snapshots.app.snapshots.get(tid))
        # snapshots at versions 10, 20, 30, 40, 50 and events after the last one
        assert [s.originator_version for s in snapshots] == [10, 20, 30, 40, 50]
        assert ticket.version > snapshots[-1].originator_version
        full = bootstrap(db, env={"DISPATCH_SNAPSHOT_EVERY": "0"})
        try:
            assert full.app.snapshots is None  # loads from the whole history
            replayed = full.app.get_ticket(tid)
        finally:
            full.close()
        assert vars(ticket) == vars(replayed)
        assert ticket.status == "evaluated" and ticket.satisfaction == "basically_satisfied"
        assert ticket.held_since is None and ticket.dispatch_no == 13  # held and resumed twelve times
    finally:
        with_snapshots.close()


def test_snapshots_can_be_turned_off(tmp_path: Path) -> None:
    runtime = bootstrap(str(tmp_path / "off.db"), env={"DISPATCH_SNAPSHOT_EVERY": "0"})
    try:
        tid = _long_history(runtime)
        assert runtime.app.get_ticket(tid).version > 40
        assert runtime.app.snapshots is None
    finally:
        runtime.close()
    on = bootstrap(str(tmp_path / "off.db"), env={"DISPATCH_SNAPSHOT_EVERY": "10"})
    try:
        assert on.app.snapshots is not None and list(on.app.snapshots.get(tid)) == []
    finally:
        on.close()


def test_the_default_is_every_50_events(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPATCH_SNAPSHOT_EVERY", raising=False)
    runtime = bootstrap(str(tmp_path / "default.db"))
    try:
        assert list(runtime.app.snapshotting_intervals.values()) == [50]
    finally:
        runtime.close()


@pytest.mark.parametrize("value", ["-1", "often"])
def test_a_bad_setting_is_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(DispatchError, match="DISPATCH_SNAPSHOT_EVERY"):
        bootstrap(str(tmp_path / "bad.db"), env={"DISPATCH_SNAPSHOT_EVERY": value})


def test_the_command_path_loads_a_ticket_from_its_snapshot_and_the_events_after_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dispatch.adapters import eventstore
    from dispatch.service import preload
    from dispatch.service.preload import load_tickets

    runtime = bootstrap(str(tmp_path / "cmd.db"), env={"DISPATCH_SNAPSHOT_EVERY": "10"})
    try:
        app = runtime.app
        tid = _long_history(runtime)
        assert app.snapshots is not None
        read: list[int] = []
        original = eventstore.snapshots_and_events

        def counting(recorder: Any, snapshots: Any, ids: Any) -> Any:
            latest, found = original(recorder, snapshots, ids)
            read.extend(e.originator_version for e in found.get(tid, []))
            return latest, found

        with monkeypatch.context() as patch:
            patch.setattr(preload, "snapshots_and_events", counting)
            loaded = load_tickets(app.recorder, app.mapper, [tid], app.snapshots.recorder)[tid]
        assert read == list(range(51, loaded.version + 1))  # only the events after the snapshot at 50
        assert vars(loaded) == vars(load_tickets(app.recorder, app.mapper, [tid])[tid])  # = the whole history
        # and a command goes through it: the next step lands on the right version
        outcome = app.execute(parse_command({
            "type": "close", "ticket_id": str(tid), "occurred_at": (loaded.last_at + timedelta(minutes=5)).isoformat(),
            "actor": {"role": "centre", "id": "c"}}))
        assert outcome.error is None and app.get_ticket(tid).version == loaded.version + 1
    finally:
        runtime.close()
