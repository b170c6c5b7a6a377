"""The fast decoding of stored events (``dispatch.projections.decode``, ``StoreReader``) gives
exactly the records eventsourcing's mapper gives — old event versions included — and the
ticket-events wire gives them back unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dispatch.bootstrap import Runtime
from dispatch.domain.upcasting import upcast_record
from dispatch.projections.decode import StoredEventDecoder, for_mapper
from dispatch.projections.decode import records_from_notifications, records_via_mapper
from dispatch.projections.reader import StoreReader
from dispatch.projections.records import EventRecord, record_from_json, record_to_json
from tests.unit.test_replay_helpers import run_scenario
from tests.unit.test_upcasting import EVALUATED, _v1_copy


def _notifications(runtime: Runtime) -> list[Any]:
    return list(runtime.app.recorder.select_notifications(1, 100_000))


def _strict(records: list[EventRecord]) -> list[str]:
    """repr shows each datetime's own offset, which == between aware datetimes ignores."""
    return [repr(r) for r in records]


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder: Path = tmp_path_factory.mktemp("decode")
    current = run_scenario(folder / "v2.db", n=60)
    old = _v1_copy(current, folder / "v1.db")
    yield current, old
    current.close()
    old.close()


@pytest.mark.parametrize("which", ["current", "old"])
def test_the_fast_path_gives_the_mappers_records(stores: Any, which: str) -> None:
    runtime = stores[0] if which == "current" else stores[1]
    notifications = _notifications(runtime)
    expected = records_via_mapper(notifications, runtime.app.mapper)
    assert for_mapper(runtime.app.mapper) is not None
    assert records_from_notifications(notifications, runtime.app.mapper) == expected
    reader = StoreReader(runtime.app)
    paged: list[EventRecord] = []
    position = 0
    while True:
        records, position, read = reader.page(position + 1, 7)
        if not read:
            break
        paged += records
    assert paged == expected
    assert _strict(paged) == _strict(expected)
    assert {r.type for r in expected} >= {"Reported", "Dispatched", "Evaluated", "Reopened", "Escalated"}


def test_an_old_evaluated_is_upcast_on_the_fast_path(stores: Any) -> None:
    _, old = stores
    v1 = [n for n in _notifications(old) if n.topic == EVALUATED]
    assert v1 and b"class_version" not in v1[0].state
    fast = StoredEventDecoder().records([(n.id, n.originator_id, n.originator_version, n.topic, n.state) for n in v1])
    assert fast == records_via_mapper(v1, old.app.mapper)
    assert {r.data["method"] for r in fast} == {"callback"}


def test_the_wire_gives_the_store_records_back(stores: Any) -> None:
    _, old = stores
    records = StoreReader(old.app).page(1, 100_000)[0]
    wired = [upcast_record(record_from_json(record_to_json(r))) for r in records]
    assert wired == records
    assert _strict(wired) == _strict(records)


def test_a_stop_bounds_the_page(stores: Any) -> None:
    current, _ = stores
    records, last, read = StoreReader(current.app).page(3, 100, stop=10)
    assert [r.position for r in records] == list(range(3, 11)) and last == 10 and read == 8
    assert StoreReader(current.app).page(10_000, 5) == ([], 9_999, 0)


# fields each event type gained after v1 (dispatch.domain.upcasting): an "oldest" store holds none of them
_ADDED = {"Reported": ("reporter", "media", "case_no", "accept_due", "dispatch_due", "centre_basis", "calendar",
                       "provisional", "position"),
          "Dispatched": ("provisional", "calendar"), "Redispatched": ("provisional", "calendar"),
          "Handled": ("call_id",), "Evaluated": ("method",), "Escalated": ("deadlines",), "Closed": ("override",)}


def _oldest_copy(current: Runtime, path: Path) -> Runtime:
    """The same history with every changed event stored in its first shape (no class version);
    every other report kept its position in its location text, as before v4."""
    from eventsourcing.persistence import StoredEvent

    from dispatch.bootstrap import bootstrap

    old = bootstrap(str(path))
    transcoder = current.app.mapper.transcoder
    stored = []
    for n in _notifications(current):
        added = _ADDED.get(n.topic.rsplit(".", 1)[-1])
        state = n.state
        if added:
            body = transcoder.decode(state)
            for key in (*added, "class_version"):
                body.pop(key, None)
            if "grid" in body and n.id % 2:
                body["location"] = f"30.78{n.id:04d},121.40{n.id:04d} (WGS-84)"
            state = transcoder.encode(body)
        stored.append(StoredEvent(originator_id=n.originator_id, originator_version=n.originator_version,
                                  topic=n.topic, state=state))
    old.app.recorder.insert_events(stored)
    return old


@pytest.mark.parametrize("which", ["current", "old", "oldest"])
def test_showing_a_ticket_and_its_history_from_the_store_s_table_equals_the_aggregate(stores: Any, which: str,
                                                                       tmp_path: Path) -> None:
    # dispatch show, history and timeline read the ticket's stored events themselves (no
    # eventsourcing to import): every ticket shows exactly as through eventsourcing's store and
    # aggregate, old shapes included
    from dispatch.service import queries

    made = _oldest_copy(stores[0], tmp_path / "o.db") if which == "oldest" else None
    runtime = made or {"current": stores[0], "old": stores[1]}[which]
    assert runtime.plain_store
    stored = _notifications(runtime)
    ids = sorted({n.originator_id for n in stored}, key=str)
    assert len(ids) >= 40
    def read(tid: Any) -> tuple[Any, ...]:
        return queries.show(runtime, tid), queries.history(runtime, tid), queries.timeline(runtime, tid)

    try:
        folded = {tid: read(tid) for tid in ids}
        runtime.plain_store = False
        through_store = {tid: read(tid) for tid in ids}
    finally:
        runtime.plain_store = True
        if made is not None:
            made.close()
    assert folded == through_store
    assert _strict(list(folded.values())) == _strict(list(through_store.values()))  # offsets too
    shown = [row for row, _, _ in folded.values()]
    assert {row["status"] for row in shown} >= {"closed", "cancelled", "dispatched"}
    assert sum(len(history) for _, history, _ in folded.values()) == len(stored)
    if which == "oldest":  # the v3 → v4 step found the positions in the text
        assert sum(row["position"] is not None for row in shown) >= 10
