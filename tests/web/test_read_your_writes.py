"""Embedded, a write is answered only once the read models hold it, so whoever wrote reads what
they wrote although the web process's reads never project (its writes' projector and its live
pages' watcher do: reads neither repeat that work nor queue for one another's projection)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dispatch import commands as c
from dispatch.projections import STORE_SOURCE, stored_position
from tests.waiting import wait_for
from tests.web.support import GRID_A, make_api


def _behind(api: Any) -> int:
    """Events recorded and not yet in the read models."""
    recorder: Any = api.runtime.app.recorder
    return int(recorder.max_notification_id() or 0) - int(stored_position(api.runtime.engine, STORE_SOURCE) or 0)


def test_a_write_is_in_the_read_models_when_it_is_answered(tmp_path: Path) -> None:
    api = make_api(tmp_path)  # not started: no live-pages watcher catching up behind the test's back
    ticket = api.report()
    assert _behind(api) == 0
    api.step("disp-a", ticket, "accept")
    assert _behind(api) == 0
    listed = api.get("disp-a", "/api/tickets", status="accepted").json()
    rows = listed.get("tickets", listed) if isinstance(listed, dict) else listed
    assert [row["ticket_id"] for row in rows] == [ticket]
    api.runtime.close()


def test_another_process_s_write_is_projected_by_the_watcher_not_by_a_read(tmp_path: Path) -> None:
    api = make_api(tmp_path)
    elsewhere = c.parse_command({"type": "report", "command_id": "cli-1", "occurred_at": api.clock.now().isoformat(),
                                 "actor": {"role": "supervisor", "id": "sup-a"}, "grid": GRID_A,
                                 "category": "city_appearance", "channel": "patrol", "description": "井盖缺失"})
    ticket = str(api.runtime.app.execute_batch([elsewhere])[0].ticket_id)  # as `dispatch report` in a terminal would
    assert ticket not in api.get("disp-a", "/api/tickets").text
    assert _behind(api) == 1  # the read answered from the read models as they stood
    with api.client:  # the server started: its watcher catches up within a tick
        wait_for(lambda: _behind(api) == 0, timeout=30, every=0.1, what="the watcher to project the report")
        assert ticket in api.get("disp-a", "/api/tickets").text
    api.runtime.close()
