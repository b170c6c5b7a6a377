"""How a rebuild loads its target: pages read ahead in order, errors reach the caller, and
the finished target is an ordinary database (WAL, every index) equal to the live one."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect

from dispatch.projections import STORE_SOURCE, catch_up, stored_position
from dispatch.projections import tables as t
from dispatch.service.replay import compare, open_target, StoreSource
from dispatch.service.replay import rebuild
from dispatch.service.replay.ahead import read_ahead
from tests.unit.test_replay_helpers import run_scenario


def test_read_ahead_keeps_the_order_and_hands_over_errors() -> None:
    assert list(read_ahead(range(50), 2)) == list(range(50))
    assert list(read_ahead(range(5), 0)) == list(range(5))

    def failing() -> Iterator[int]:
        yield 1
        raise ValueError("bad page")

    got = []
    with pytest.raises(ValueError, match="bad page"):
        for item in read_ahead(failing(), 2):
            got.append(item)
    assert got == [1]


def test_a_consumer_that_stops_early_closes_the_producer() -> None:
    closed = []

    def pages() -> Iterator[int]:
        try:
            yield from range(1000)
        finally:
            closed.append(True)

    for item in read_ahead(pages(), 2):
        if item == 3:
            break
    assert closed == [True]


def test_the_rebuilt_file_is_an_ordinary_database_equal_to_the_live_one(tmp_path: Path) -> None:
    live = run_scenario(tmp_path / "live.db", n=40)
    try:
        catch_up(live)
        target = open_target(str(tmp_path / "rebuilt.db"), live.reference, source="test")
        try:
            result = rebuild(StoreSource(live.app, page_size=30), target.engine, progress=False)
            assert result.read == result.applied == live.app.recorder.max_notification_id()
            assert compare(live.engine, target.engine).ok
            found = inspect(target.engine)
            for table in t.METADATA.sorted_tables:
                assert {ix.name for ix in table.indexes} <= {ix["name"] for ix in found.get_indexes(table.name)}
        finally:
            target.close()
        with sqlite3.connect(tmp_path / "rebuilt.db") as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        live.close()


@pytest.mark.parametrize("workers", [2, 3])
def test_a_multi_process_rebuild_equals_a_single_process_one(tmp_path: Path, workers: int) -> None:
    live = run_scenario(tmp_path / "live.db", n=40)
    try:
        single = open_target(str(tmp_path / "single.db"), live.reference, source="test")
        multi = open_target(str(tmp_path / "multi.db"), live.reference, source="test")
        try:
            one = rebuild(StoreSource(live.app, page_size=30), single.engine, progress=False, workers=1)
            many = rebuild(StoreSource(live.app, page_size=30), multi.engine, progress=False, workers=workers)
            assert (many.workers, one.workers) == (workers, 1)
            assert many.read == one.read == many.applied == one.applied
            comparison = compare(single.engine, multi.engine)
            assert comparison.ok, [tc for tc in comparison.tables if not tc.ok]
            assert all(tc.live_rows for tc in comparison.tables if tc.table in ("tickets", "ticket_states", "calls"))
            last = live.app.recorder.max_notification_id()
            assert stored_position(multi.engine, STORE_SOURCE) == stored_position(single.engine, STORE_SOURCE) == last
            found = inspect(multi.engine)
            for table in t.METADATA.sorted_tables:
                assert {ix.name for ix in table.indexes} <= {ix["name"] for ix in found.get_indexes(table.name)}
        finally:
            single.close()
            multi.close()
        assert not [p for p in tmp_path.iterdir() if p.name.startswith("dispatch-rebuild-")]  # scratch files gone
    finally:
        live.close()
