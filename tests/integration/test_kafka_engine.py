"""The engine survives kill -9, a broker restart and a rebalance: every valid command applied exactly once."""

from __future__ import annotations

import json

import warnings
from datetime import datetime, timedelta, timezone

import pytest

from dispatch.bootstrap import bootstrap
from dispatch.domain.errors import ConcurrentChange
from tests.integration.kafka_support import intake_caught_up, kill, some_progress, stack, stored_command_ids, \
    wait_for
from tests.integration.servers import private_kafka

with warnings.catch_warnings():  # kafka-python's import-time DeprecationWarning
    warnings.simplefilter("ignore", DeprecationWarning)
    from dispatch.adapters.kafka import FencedTracking, install_fence
    from dispatch.adapters.kafka.load import lifecycle_messages
    from tests.integration.kafka_support import read_topic

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=8)))


def _expected_ids(messages) -> set[str]:
    import json

    return {json.loads(value)["command_id"] for _, value in messages}


def _assert_exactly_once(app, expected: set[str]) -> None:
    counts = stored_command_ids(app)
    assert set(counts) == expected, f"missing {len(expected - set(counts))}, unexpected {len(set(counts) - expected)}"
    assert [cid for cid, n in counts.items() if n != 1] == []


def test_kill_9_in_the_middle_of_5000_commands_then_restart_applies_each_exactly_once(tmp_path):
    with stack(tmp_path, "kill9") as s:
        runtime = bootstrap(s.db_url)
        # 5,000 commands, as a door (the HTTP API) sends them: with the time received, so their outcomes are logged
        messages = [(key, _received(value)) for key, value in lifecycle_messages(runtime.reference, 1000, start=T0,
                                                                                 tag="k9")]
        s.send(messages)

        engine = s.engine_process("engine-1", "--max-poll-records", "500")
        wait_for(lambda: (runtime.app.recorder.max_notification_id() or 0) >= 500, every=0.05, what="some progress")
        kill(engine)  # SIGKILL: no goodbye, possibly mid-transaction
        applied_at_kill = runtime.app.recorder.max_notification_id()
        assert applied_at_kill < len(messages), "the engine finished before it could be killed"

        engine = s.engine_process("engine-2")
        try:
            wait_for(lambda: intake_caught_up(s, runtime.app), what="the restarted engine to catch up")
        finally:
            kill(engine)
        _assert_exactly_once(runtime.app, _expected_ids(messages))
        _assert_outcomes_match_events(runtime)
        assert read_topic(s.settings, s.topics.dead_letters) == []
        runtime.close()


def _received(value: bytes) -> bytes:
    body = json.loads(value)
    body["actor"]["received_at"] = body["occurred_at"]
    return json.dumps(body, ensure_ascii=False).encode()


def _assert_outcomes_match_events(runtime) -> None:
    """The command log (what the HTTP API answers from) was written with the events: after a
    kill and a restart every command has exactly its one outcome, naming the very event it caused."""
    from sqlalchemy import select

    from dispatch.adapters.outcome_log import command_outcomes

    with runtime.engine.connect() as conn:
        logged = {r.command_id: (r.outcome, r.ticket_id, r.version)
                  for r in conn.execute(select(command_outcomes))}
    events = {}
    start = 1
    while notifications := runtime.app.recorder.select_notifications(start, 5000):
        for n in notifications:
            event = runtime.app.mapper.to_domain_event(n)
            events[event.command_id] = ("applied", str(event.originator_id), event.originator_version)
        start = notifications[-1].id + 1
    assert logged == events


def test_two_engines_split_the_partitions_and_one_takes_over_when_the_other_is_killed(tmp_path):
    with stack(tmp_path, "twoengines") as s:
        runtime = bootstrap(s.db_url)
        a = s.engine_process("engine-a", "--max-poll-records", "200")
        b = s.engine_process("engine-b", "--max-poll-records", "200")
        try:
            def assigned(name):
                return [line["partitions"] for line in s.log_lines(name) if line.get("event") == "partitions assigned"]

            # Both joined the group and each owns part of the six partitions.
            wait_for(lambda: assigned("engine-a") and assigned("engine-b")
                     and len(assigned("engine-a")[-1]) + len(assigned("engine-b")[-1]) == 6
                     and assigned("engine-a")[-1] and assigned("engine-b")[-1], what="a split assignment")
            split = (set(assigned("engine-a")[-1]), set(assigned("engine-b")[-1]))
            assert not split[0] & split[1]

            # 15,000 commands: far more than two engines apply between two looks at the store, so A dies
            # mid-stream (5,000 once finished within a quarter second on a fast machine).
            messages = lifecycle_messages(runtime.reference, 3000, start=T0, tag="two")
            s.send(messages)
            some_progress(runtime.app, 500)
            kill(a)
            assert runtime.app.recorder.max_notification_id() < len(messages), "the stream ended before A was killed"
            assert any(line.get("event") == "batch applied" for line in s.log_lines("engine-a"))
            # B is given A's partitions (after the group notices A is gone) and finishes the stream.
            wait_for(lambda: intake_caught_up(s, runtime.app), timeout=180, what="engine B to take over")
            assert set(assigned("engine-b")[-1]) == set(range(6))
        finally:
            kill(a)
            kill(b)
        _assert_exactly_once(runtime.app, _expected_ids(messages))
        runtime.close()


def test_a_broker_stopped_and_restarted_mid_stream_loses_nothing(tmp_path):
    """On a broker of the test's own: the shared one keeps serving the other tests."""
    with private_kafka(tmp_path) as (broker, address), stack(tmp_path, "brokerrestart", bootstrap=address) as s:
        runtime = bootstrap(s.db_url)
        messages = lifecycle_messages(runtime.reference, 400, start=T0, tag="br")
        first, second = messages[:1000], messages[1000:]
        engine = s.engine_process("engine")
        try:
            s.send(first)
            wait_for(lambda: intake_caught_up(s, runtime.app) and stored_command_ids(runtime.app), what="first half")
            broker.stop()
            broker.start()
            s.send(second)
            wait_for(lambda: intake_caught_up(s, runtime.app) and len(stored_command_ids(runtime.app)) == 2000,
                     timeout=180, what="the engine to reconnect and apply the second half")
        finally:
            kill(engine)
        _assert_exactly_once(runtime.app, _expected_ids(messages))
        runtime.close()


def test_postgres_refuses_a_batch_whose_partition_position_moved_meanwhile(tmp_path):
    with stack(tmp_path, "fence") as s:
        runtime = bootstrap(s.db_url)
        app = runtime.app
        install_fence(app.recorder)
        from dispatch.domain.commands import parse_command
        import json

        commands = [parse_command(json.loads(v)) for _, v in lifecycle_messages(runtime.reference, 3, start=T0,
                                                                                 steps=("report",))]
        app.execute_batch(commands[:1], tracking=FencedTracking("x.intake:0", 10, None))  # B, offsets 0..10
        with pytest.raises(ConcurrentChange):  # A, evicted, also started after nothing; ends further
            app.execute_batch(commands[1:2], tracking=FencedTracking("x.intake:0", 15, None))
        with pytest.raises(ConcurrentChange):
            app.execute_batch(commands[1:2], tracking=FencedTracking("x.intake:0", 15, 3))
        app.execute_batch(commands[2:], tracking=FencedTracking("x.intake:0", 12, 10))
        assert app.recorder.max_tracking_id("x.intake:0") == 12
        assert len(stored_command_ids(app)) == 2
        runtime.close()
