"""On PostgreSQL: the command path starts a ticket from its latest snapshot and reads only the
events after it, and a batch loads many tickets, some with snapshots and some without, into
exactly the state a full replay gives."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from dispatch.adapters import eventstore
from dispatch.bootstrap import bootstrap
from dispatch.domain.commands import parse_command
from dispatch.service.preload import load_tickets
from tests.integration.servers import drop_postgres_database, fresh_postgres_database
from tests.unit.test_replay_helpers import T0
from tests.unit.test_snapshots import _long_history

pytestmark = pytest.mark.integration


def test_snapshots_on_postgres_load_only_the_later_events(monkeypatch: pytest.MonkeyPatch) -> None:
    url = fresh_postgres_database("snapshots")
    runtime = bootstrap(url, env={"DISPATCH_SNAPSHOT_EVERY": "10"})
    try:
        app = runtime.app
        long_one = _long_history(runtime)
        short = [app.execute(parse_command({
            "type": "report", "occurred_at": (T0 + timedelta(minutes=i)).isoformat(),
            "actor": {"role": "supervisor", "id": "s"}, "grid": "cj-shuiku-g01", "category": "city_appearance",
            "channel": "patrol", "description": f"短 {i}"})).ticket_id for i in range(3)]
        assert app.snapshots is not None
        read: dict[Any, list[int]] = {}
        original = eventstore.snapshots_and_events

        def counting(recorder: Any, snapshots: Any, ids: Any) -> Any:
            latest, found = original(recorder, snapshots, ids)
            for tid, events in found.items():
                read.setdefault(tid, []).extend(e.originator_version for e in events)
            return latest, found

        import dispatch.service.preload as bulk_load
        with monkeypatch.context() as patch:
            patch.setattr(bulk_load, "snapshots_and_events", counting)
            loaded = load_tickets(app.recorder, app.mapper, [long_one, *short], app.snapshots.recorder)
        full = load_tickets(app.recorder, app.mapper, [long_one, *short])
        assert read[long_one] == list(range(51, loaded[long_one].version + 1))
        assert all(read[tid] == [1] for tid in short)
        assert {tid: vars(t) for tid, t in loaded.items()} == {tid: vars(t) for tid, t in full.items()}
    finally:
        runtime.close()
        drop_postgres_database(url)


def test_on_postgres_a_ticket_read_from_the_store_s_table_equals_the_aggregate() -> None:
    # dispatch show, history and timeline read a ticket's rows from the store's table and fold
    # them; on PostgreSQL too they give what the store and its aggregate (from a snapshot) give
    from dispatch.service import queries
    from tests.unit.test_replay_helpers import run_scenario

    url = fresh_postgres_database("readfold")
    runtime = run_scenario(url, n=30, env={"DISPATCH_SNAPSHOT_EVERY": "3"})
    try:
        assert runtime.plain_store and runtime.store_table == "dispatch_events"
        ids = sorted({n.originator_id for n in runtime.app.recorder.select_notifications(1, 100_000)}, key=str)
        assert len(ids) >= 20

        def read(tid: Any) -> tuple[Any, ...]:
            return queries.show(runtime, tid), queries.history(runtime, tid), queries.timeline(runtime, tid)

        folded = {tid: read(tid) for tid in ids}
        runtime.plain_store = False
        through_store = {tid: read(tid) for tid in ids}
        assert folded == through_store
        assert [repr(v) for v in folded.values()] == [repr(v) for v in through_store.values()]
    finally:
        runtime.close()
        drop_postgres_database(url)
