"""``dispatch replay --from-kafka``: the relay fills a ticket-events topic (unique
prefix); a rebuild from it, offset 0 on, equals the live projections, also with a
redelivered message and an event published in the old (v1) shape."""

from __future__ import annotations

import json
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dispatch.projections import catch_up
from dispatch.projections.decode import records_from_notifications
from dispatch.projections.records import record_to_json
from tests.integration.kafka_support import drop_topics
from tests.integration.servers import kafka_bootstrap
from tests.unit.test_replay_helpers import T0, run_scenario

with warnings.catch_warnings():  # kafka-python's import-time DeprecationWarning
    warnings.simplefilter("ignore", DeprecationWarning)
    from consumers.relay import Relay
    from dispatch.adapters.kafka import KafkaSettings, ensure_topics, make_producer
    from dispatch.cli import main

pytestmark = pytest.mark.integration
T = T0.replace(day=17, hour=15)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, KafkaSettings]]:
    db = str(tmp_path_factory.mktemp("kafka-replay") / "live.db")
    settings = KafkaSettings(bootstrap=kafka_bootstrap(), prefix=f"test-replay-{uuid.uuid4().hex[:8]}.")
    ensure_topics(settings)
    runtime = run_scenario(db, n=80)
    try:
        catch_up(runtime)  # the live projections (embedded mode)
        relay = Relay(runtime, settings)
        try:
            relay.run_until_idle(timeout=120)
        finally:
            relay.close()
        # a redelivery (at-least-once) and an Evaluated published by an older relay, without "method"
        records = records_from_notifications(runtime.app.recorder.select_notifications(1, 100_000),
                                             runtime.app.mapper)
        evaluated = next(r for r in records if r.type == "Evaluated")
        old = type(evaluated)(evaluated.position, evaluated.ticket_id, evaluated.version, evaluated.type,
                              {k: v for k, v in evaluated.data.items() if k != "method"})
        producer = make_producer(settings)
        try:
            for record in (records[0], old, records[-1]):
                producer.send(settings.topics.ticket_events, key=str(record.ticket_id).encode(),
                              value=record_to_json(record)).get(timeout=60)
        finally:
            producer.close()
    finally:
        runtime.close()
    try:
        yield db, settings
    finally:
        drop_topics(settings)


def cli(db: str, *args: str) -> Any:
    return CliRunner().invoke(main, ["--db", db, "--json", *args], catch_exceptions=False)


def test_verify_from_kafka_reports_zero_differences(stack: tuple[str, KafkaSettings]) -> None:
    db, settings = stack
    result = cli(db, "replay", "--verify", "--from-kafka", settings.bootstrap, "--topic-prefix", settings.prefix,
                 "--no-progress")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["verification"]["ok"] and report["verification"]["differing_rows"] == 0
    assert report["events_read"] == report["events_applied"] + 3  # the three re-sent messages had no effect


def test_until_from_kafka_equals_the_live_view_as_of(stack: tuple[str, KafkaSettings], tmp_path: Path) -> None:
    db, settings = stack
    target = str(tmp_path / "kafka-until.db")
    result = cli(db, "replay", "--from-kafka", settings.bootstrap, "--topic-prefix", settings.prefix,
                 "--until", T.isoformat(), "--into", target, "--no-progress")
    assert result.exit_code == 0, result.output
    for view in (["dashboard", "--street", "caojing"], ["sla", "--by", "department"]):
        live = cli(db, *view, "--as-of", T.isoformat())
        rebuilt = cli(target, *view, "--as-of", T.isoformat())
        assert json.loads(rebuilt.stdout) == json.loads(live.stdout)


def test_an_unknown_topic_is_one_clear_error(stack: tuple[str, KafkaSettings]) -> None:
    db, settings = stack
    result = CliRunner().invoke(main, ["--db", db, "replay", "--verify", "--from-kafka", settings.bootstrap,
                                       "--topic-prefix", f"nothing-{uuid.uuid4().hex[:6]}.", "--no-progress"])
    assert result.exit_code == 1
    assert "no topic" in str(result.exception)
