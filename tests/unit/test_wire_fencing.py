"""Compare-and-set positions: a batch is recorded only after the position it started from."""

from __future__ import annotations

import warnings
from datetime import datetime, timedelta, timezone

import pytest

from dispatch.bootstrap import bootstrap
from dispatch.domain.commands import parse_command
from dispatch.domain.errors import ConcurrentChange

with warnings.catch_warnings():  # kafka-python's import-time DeprecationWarning
    warnings.simplefilter("ignore", DeprecationWarning)
    from dispatch.adapters.kafka import FencedTracking, install_fence

AT = datetime(2026, 3, 2, 9, 30, tzinfo=timezone(timedelta(hours=8)))


@pytest.fixture
def app(tmp_path):
    runtime = bootstrap(str(tmp_path / "fence.db"))
    install_fence(runtime.app.recorder)
    yield runtime.app
    runtime.close()


def _report(n: int):
    return parse_command({"type": "report", "command_id": f"r-{n}", "occurred_at": (AT + timedelta(minutes=n)).isoformat(),
                          "actor": {"role": "supervisor", "id": "s"}, "grid": "cj-shuiku-g01",
                          "category": "city_appearance", "channel": "patrol", "description": "d"})


def test_a_batch_that_continues_from_the_stored_position_is_recorded(app):
    app.execute_batch([_report(1)], tracking=FencedTracking("p.intake:0", 0, None))
    app.execute_batch([_report(2)], tracking=FencedTracking("p.intake:0", 5, 0))
    assert app.recorder.max_tracking_id("p.intake:0") == 5


def test_a_second_process_starting_from_the_same_position_records_nothing(app):
    # A (evicted, still working) and B (new owner) both started after offset 0.
    app.execute_batch([_report(1)], tracking=FencedTracking("p.intake:0", 0, None))
    app.execute_batch([_report(2)], tracking=FencedTracking("p.intake:0", 9, 0))  # B: offsets 1..9
    with pytest.raises(ConcurrentChange):
        app.execute_batch([_report(3)], tracking=FencedTracking("p.intake:0", 4, 0))  # A: offsets 1..4
    with pytest.raises(ConcurrentChange):  # a larger end does not get through either
        app.execute_batch([_report(4)], tracking=FencedTracking("p.intake:0", 20, 0))
    assert app.recorder.max_tracking_id("p.intake:0") == 9
    assert len(app.recorder.select_notifications(1, 100)) == 2  # only reports 1 and 2


def test_a_batch_of_refused_commands_still_moves_the_position(app):
    outcomes = app.execute_batch([_report(1), _report(1)], tracking=FencedTracking("p.intake:1", 1, None))
    assert [o.error.code if o.error else None for o in outcomes] == [None, "duplicate_command"]
    app.execute_batch([_report(1)], tracking=FencedTracking("p.intake:1", 2, 1))
    assert app.recorder.max_tracking_id("p.intake:1") == 2


def test_nothing_is_recorded_when_before_record_refuses(app):
    def refuse(outcomes):
        raise RuntimeError("dead letters could not be sent")

    with pytest.raises(RuntimeError):
        app.execute_batch([_report(1)], tracking=FencedTracking("p.intake:0", 0, None), before_record=refuse)
    assert app.recorder.max_tracking_id("p.intake:0") is None
    assert not app.recorder.select_notifications(1, 10)
