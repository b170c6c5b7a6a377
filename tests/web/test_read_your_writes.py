"""Embedded, the web process has one projector: every write wakes it, and a read waits for it to
reach what the store holds when the read begins rather than project itself. So whoever wrote
reads what they wrote — and what another process wrote before — while reads neither repeat one
another's projection nor queue for one another's lock."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from dispatch import commands as c
from dispatch.projections import runner
from tests.web.support import GRID_A, make_api


@pytest.fixture
def projecting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the threads that catch the read models up."""
    seen: list[str] = []
    catch_up = runner.catch_up

    def noted(runtime: Any, **options: Any) -> int:
        seen.append(threading.current_thread().name)
        return catch_up(runtime, **options)

    monkeypatch.setattr(runner, "catch_up", noted)
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
