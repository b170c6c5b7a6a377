"""Embedded, the web process has one projector: every write wakes it, and a read waits for it to
reach what the store holds when the read begins rather than project itself. So whoever wrote
reads what they wrote — and what another process wrote before — while reads neither repeat one
another's projection nor queue for one another's lock."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from dispatch.domain import commands as c
from dispatch.projections import poller
from tests.web.support import GRID_A, make_api


@pytest.fixture
def projecting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the threads that catch the read models up."""
    seen: list[str] = []
    catch_up = poller.catch_up

    def noted(runtime: Any, **options: Any) -> int:
        seen.append(threading.current_thread().name)
        return catch_up(runtime, **options)

    monkeypatch.setattr(poller, "catch_up", noted)
    return seen


def test_whoever_wrote_reads_it_and_no_read_projects(tmp_path: Path, projecting: list[str]) -> None:
    api = make_api(tmp_path)
    ticket = api.report()
    api.step("disp-a", ticket, "accept")
    listed = api.get("disp-a", "/api/tickets", status="accepted").text
    assert ticket in listed
    assert api.get("lead-a", "/api/dashboard", street="caojing").json()["reported"] == 1
    assert projecting and set(projecting) == {"dispatch-projector"}
    api.runtime.close()


def test_a_read_waits_for_what_another_process_wrote_before_it(tmp_path: Path, projecting: list[str]) -> None:
    api = make_api(tmp_path)
    api.report()  # the projector is running
    elsewhere = c.parse_command({"type": "report", "command_id": "cli-1", "occurred_at": api.clock.now().isoformat(),
                                 "actor": {"role": "supervisor", "id": "sup-a"}, "grid": GRID_A,
                                 "category": "city_appearance", "channel": "patrol", "description": "井盖缺失"})
    ticket = str(api.runtime.app.execute_batch([elsewhere])[0].ticket_id)  # as `dispatch report` in a terminal would
    assert ticket in api.get("disp-a", "/api/tickets").text
    assert set(projecting) == {"dispatch-projector"}
    api.runtime.close()


def test_the_watcher_learns_what_moved_from_the_projector_and_reads_every_open_ticket_only_when_it_must(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The live pages' watcher asks this process's projector which tickets its pages moved, and
    reads those rows alone; it compares every open ticket's version only when events were
    projected elsewhere (another process caught up) — and is told the same moves either way."""
    from dispatch.service import queries
    from dispatch.web.live import Hub

    api = make_api(tmp_path)
    first = api.report()
    poller.for_reading(api.runtime)  # the projector holds it
    hub = Hub(api.runtime, embedded=False)
    assert hub.check() is None  # where the read models stand: every open ticket read once
    scans: list[int] = []
    every_open = queries.open_versions

    def scanned(engine: Any) -> dict[str, int]:
        scans.append(1)
        return every_open(engine)

    monkeypatch.setattr(queries, "open_versions", scanned)

    def moved() -> set[str]:
        poller.for_reading(api.runtime)
        move = hub.check()
        assert move is not None and move.changes is not None
        return {change["ticket_id"] for change in move.changes}

    second = api.report()
    api.step("disp-a", first, "accept")
    assert moved() == {first, second} and not scans
    api.step("disp-a", second, "cancel", {"reason": "重复上报"})
    assert moved() == {second} and not scans  # ended: told, and no longer open
    assert hub.check() is None

    api.runtime.projector.stop()  # what another process projects, this one's projector did not apply
    other = c.parse_command({"type": "report", "command_id": "cli-2", "occurred_at": api.clock.now().isoformat(),
                             "actor": {"role": "supervisor", "id": "sup-a"}, "grid": GRID_A,
                             "category": "city_appearance", "channel": "patrol", "description": "路灯不亮"})
    third = str(api.runtime.app.execute_batch([other])[0].ticket_id)
    poller.catch_up(api.runtime)
    assert moved() == {third} and len(scans) == 1
    api.runtime.close()
