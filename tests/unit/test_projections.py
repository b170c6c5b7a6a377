"""Projection machinery: exactly-once application, batches, time travel, the ticket list, the timeline."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from uuid import UUID

import pytest
import yaml

from dispatch.bootstrap import Runtime, bootstrap
from dispatch.projections import (apply_records, catch_up, community_dashboard, list_tickets, sla_statistics,
                                  stored_position)
from dispatch.projections.decode import records_from_notifications
from dispatch.projections.records import record_from_json, record_to_json
from dispatch.projections.timeline import timeline
from tests.unit.test_sla_scenario import AS_OF, REFERENCE, play

AS_OF_T = datetime.fromisoformat(AS_OF)
MIDWAY = datetime.fromisoformat("2026-10-09T12:00:00+08:00")


def _runtime(path: Path) -> Runtime:
    ref = path.parent / "reference.yaml"
    ref.write_text(yaml.safe_dump(REFERENCE, allow_unicode=True), encoding="utf-8")
    return bootstrap(str(path), reference_file=ref)


@pytest.fixture
def story(tmp_path: Path) -> Iterator[tuple[Runtime, dict[str, str]]]:
    runtime = _runtime(tmp_path / "a.db")
    ids = play(runtime)
    yield runtime, ids
    runtime.close()


def _figures(runtime: Runtime, as_of: datetime) -> tuple[object, object]:
    return (sla_statistics(runtime.engine, runtime.reference, by="department", as_of=as_of),
            community_dashboard(runtime.engine, runtime.reference, "ca", as_of=as_of))


def test_catch_up_applies_every_event_once(story: tuple[Runtime, dict[str, str]]) -> None:
    runtime, _ = story
    total = runtime.app.recorder.max_notification_id()
    assert catch_up(runtime, batch_size=50) == total
    assert stored_position(runtime.engine, "store") == total
    assert catch_up(runtime) == 0  # nothing new


def test_a_redelivered_event_has_no_second_effect(story: tuple[Runtime, dict[str, str]]) -> None:
    runtime, _ = story
    catch_up(runtime)
    before = _figures(runtime, AS_OF_T)
    notifications = runtime.app.recorder.select_notifications(start=1, limit=10_000)
    # the Kafka wire format round-trips to the same records, and a redelivery is skipped
    records = [record_from_json(record_to_json(r)) for r in records_from_notifications(notifications, runtime.app.mapper)]
    assert apply_records(runtime.engine, records[:40], source="ticket-events:0", position=39) == 0
    assert apply_records(runtime.engine, records, source="ticket-events:0", position=len(records)) == 0
    assert stored_position(runtime.engine, "ticket-events:0") == len(records)
    assert _figures(runtime, AS_OF_T) == before


def test_one_batch_of_several_partitions_stores_each_position_and_gives_the_same_figures(
        story: tuple[Runtime, dict[str, str]], tmp_path: Path) -> None:
    # the projector applies a poll's partitions in one apply_batch (``also``: the other positions)
    from dispatch.projections import tables
    from dispatch.projections.apply_events import apply_batch

    runtime, _ = story
    catch_up(runtime)
    other = _runtime(tmp_path / "b.db")
    tables.ensure_tables(other.engine)
    try:
        notifications = runtime.app.recorder.select_notifications(start=1, limit=10_000)
        records = records_from_notifications(notifications, runtime.app.mapper)
        tickets = sorted({r.ticket_id for r in records})
        part = {tid: i % 3 for i, tid in enumerate(tickets)}  # a ticket's events in one partition
        for i in range(0, len(records), 11):
            chunk = records[i:i + 11]
            last = {f"ticket-events:{part[r.ticket_id]}": r.position for r in chunk}
            (source, position), *more = last.items()
            with other.engine.begin() as conn:
                apply_batch(conn, chunk, source=source, position=position, also=dict(more))
        for p in range(3):
            assert stored_position(other.engine, f"ticket-events:{p}") == max(
                r.position for r in records if part[r.ticket_id] == p)
        assert _figures(other, AS_OF_T) == _figures(runtime, AS_OF_T)
        with other.engine.begin() as conn:  # a redelivery of all of them: no second effect
            assert apply_batch(conn, records, source="ticket-events:0", position=0,
                               also={"ticket-events:1": 0, "ticket-events:2": 0}) == 0
        assert _figures(other, AS_OF_T) == _figures(runtime, AS_OF_T)
        assert stored_position(other.engine, "ticket-events:2") == 0
    finally:
        other.close()


def test_batch_size_does_not_change_any_figure(story: tuple[Runtime, dict[str, str]], tmp_path: Path) -> None:
    runtime, _ = story
    catch_up(runtime, batch_size=1)
    # the same events, applied through the Kafka path in batches of 7, into another read model
    other = _runtime(tmp_path / "b.db")
    try:
        notifications = runtime.app.recorder.select_notifications(start=1, limit=10_000)
        records = records_from_notifications(notifications, runtime.app.mapper)
        for i in range(0, len(records), 7):
            chunk = records[i:i + 7]
            apply_records(other.engine, chunk, source="ticket-events:0", position=chunk[-1].position)
        assert _figures(other, AS_OF_T) == _figures(runtime, AS_OF_T)
        assert _figures(other, MIDWAY) == _figures(runtime, MIDWAY)
    finally:
        other.close()


def test_catch_up_until_an_instant_equals_figures_as_of_it(tmp_path: Path) -> None:
    live, rebuilt = _runtime(tmp_path / "live.db"), _runtime(tmp_path / "rebuilt.db")
    try:
        play(live)
        play(rebuilt)
        catch_up(live)
        catch_up(rebuilt, until=MIDWAY)
        assert _figures(rebuilt, MIDWAY) == _figures(live, MIDWAY)
        # nothing after the instant reached the rebuilt read model (only deadlines can pass later)
        later, then = _figures(rebuilt, AS_OF_T)[1], _figures(rebuilt, MIDWAY)[1]
        for figure in ("reported", "closed", "evaluated", "escalations", "open_by_state"):
            assert later[figure] == then[figure], figure  # type: ignore[index]
    finally:
        live.close()
        rebuilt.close()


def test_list_tickets_filters_the_ticket_table(story: tuple[Runtime, dict[str, str]]) -> None:
    runtime, ids = story
    catch_up(runtime)
    open_in_b = list_tickets(runtime.engine, community="cb", status="dispatched")
    assert [t["ticket_id"] for t in open_in_b] == [ids["B13"]]
    # a department filter finds every ticket it had a call on, including B10 which 城管 rejected
    chengguan = {t["ticket_id"] for t in list_tickets(runtime.engine, department="chengguan")}
    assert chengguan == {ids[n] for n in ("A5", "A7", "A8", "A9", "A10", "B10")}
    assert len(list_tickets(runtime.engine, street="s1", limit=5)) == 5
    a6 = list_tickets(runtime.engine, grid="ca-g02", status="in_progress")
    assert [(t["ticket_id"], t["level"]) for t in a6] == [(ids["A6"], "community")]


def test_timeline_shows_the_sla_clock_in_working_time(story: tuple[Runtime, dict[str, str]]) -> None:
    runtime, ids = story
    events = timeline(runtime, UUID(ids["A2"]))["events"]
    assert [e["type"] for e in events] == ["Reported", "Accepted", "Dispatched", "Acknowledged", "Handled",
                                           "FeedbackGiven", "Evaluated", "Closed"]
    dispatched, acknowledged, handled = events[2], events[3], events[4]
    assert dispatched["actor"] == {"role": "centre", "id": "centre-1"}
    # at 09-30 09:00: ack due in 60 working minutes, handling in 450, feedback in 900
    assert [(s["deadline"], s["minutes_left"]) for s in dispatched["sla"]] == [
        ("ack:1:huanwei", 60), ("handle:1", 450), ("feedback:1", 900)]
    # acknowledged at 10:30: the ack deadline is gone; 360 working minutes of handling left
    assert [(s["deadline"], s["minutes_left"]) for s in acknowledged["sla"]] == [("handle:1", 360), ("feedback:1", 810)]
    # handled on the holiday 10-05: still 30 working minutes before the handling deadline had run out
    assert handled["occurred_at"] == "2026-10-05T10:00:00+08:00"
    assert [(s["deadline"], s["minutes_left"]) for s in handled["sla"]] == [("feedback:1", 480)]
