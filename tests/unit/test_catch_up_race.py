"""Two catch-ups on one database at once (a web server's background thread and a CLI command)
never apply the same events twice: the position is a compare-and-set."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from dispatch.bootstrap import bootstrap
from dispatch.domain import commands as c
from dispatch.projections import apply_records, catch_up, list_tickets, stored_position
from dispatch.projections.apply_events import PositionMoved
from dispatch.projections.poller import STORE_SOURCE
from dispatch.projections.reader import StoreReader
from dispatch.service import accounts
from dispatch.service.actions import act


def test_a_stale_catch_up_is_refused_and_records_nothing(tmp_path: Path) -> None:
    runtime = bootstrap(str(tmp_path / "r.db"))
    operator = accounts.local_operator("op")
    act(runtime, c.Report, operator, grid="cj-shuiku-g01", category="city_appearance", description="x",
        channel="patrol")
    records, last, _ = StoreReader(runtime.app).page(1, 100)
    assert catch_up(runtime) == 1
    with pytest.raises(PositionMoved):  # it read from the start, but someone stored a position since
        apply_records(runtime.engine, records, source=STORE_SOURCE, position=last, expected=None)
    assert stored_position(runtime.engine, STORE_SOURCE) == last
    runtime.close()


def test_two_threads_catching_up_together_apply_each_event_once(tmp_path: Path) -> None:
    runtime = bootstrap(str(tmp_path / "r.db"))
    operator = accounts.local_operator("op")
    for i in range(300):
        act(runtime, c.Report, operator, grid="cj-shuiku-g01", category="city_appearance", description=f"{i}",
            channel="patrol")
    applied: list[int] = []
    start = threading.Barrier(2)

    def run() -> None:
        start.wait()
        applied.append(catch_up(runtime, batch_size=7))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(applied) == 300
    assert len(list_tickets(runtime.engine, limit=1000)) == 300
    runtime.close()
