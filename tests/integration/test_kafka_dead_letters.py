"""Bad input never stops the engine and is never lost: each kind lands on the dead-letter topic with its reason."""

from __future__ import annotations

import json
import warnings
from datetime import datetime, timedelta, timezone

import pytest

from dispatch.aggregates import ticket_id_for
from dispatch.bootstrap import bootstrap
from tests.integration.kafka_support import read_topic, stack, stored_command_ids

with warnings.catch_warnings():  # kafka-python's import-time DeprecationWarning
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaProducer

    from consumers.engine import Engine
    from dispatch.adapters.kafka import DeadLetter

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=8)))
CENTRE = {"role": "centre", "id": "centre-1"}


def _report(cid: str, **changes) -> dict:
    body = {"type": "report", "command_id": cid, "occurred_at": T0.isoformat(), "actor": {"role": "supervisor", "id": "s"},
            "grid": "cj-shuiku-g01", "category": "city_appearance", "channel": "patrol", "description": "井盖缺失"}
    return body | changes


def _on(ticket, kind: str, cid: str, minutes: int, **fields) -> dict:
    return {"type": kind, "ticket_id": str(ticket), "command_id": cid, "actor": CENTRE,
            "occurred_at": (T0 + timedelta(minutes=minutes)).isoformat()} | fields


def test_every_kind_of_bad_input_is_dead_lettered_with_its_reason_and_good_commands_around_it_apply(tmp_path):
    with stack(tmp_path, "deadletters", partitions=2) as s:
        runtime = bootstrap(s.db_url)
        good, other = ticket_id_for(command_id="good-1"), ticket_id_for(command_id="good-2")
        huanwei = {"role": "department", "id": "hw-desk", "department": "huanwei"}
        # (key, value, the reason we expect, or None for a good command)
        stream: list[tuple[bytes, bytes, str | None]] = [
            (str(good).encode(), json.dumps(_report("good-1")).encode(), None),
            (b"x", b"{not json", "invalid_command"),
            (b"x", json.dumps(_report("t-1", type="teleport")).encode(), "invalid_command"),
            (b"x", json.dumps({k: v for k, v in _report("m-1").items() if k != "grid"}).encode(), "invalid_command"),
            (b"x", json.dumps(_report("m-2", occurred_at="yesterday")).encode(), "invalid_command"),
            (b"x", json.dumps(_report("u-1", grid="nowhere")).encode(), "unknown_grid"),
            (b"x", json.dumps(_report("u-2", category="unicorns")).encode(), "unknown_category"),
            (b"x", json.dumps(_report("big", description="x" * 100, padding="y" * 70_000)).encode(), "oversized"),
            (str(good).encode(), json.dumps(_on(good, "accept", "good-1-a", 5)).encode(), None),
            (str(good).encode(), json.dumps(_on(good, "accept", "again", 6)).encode(), "illegal_transition"),
            (str(good).encode(), json.dumps(_on(good, "accept", "good-1-a", 5)).encode(), "duplicate_command"),
            (str(good).encode(), json.dumps(_on(good, "dispatch", "d-1", 7, lead="no-such-dept")).encode(),
             "unknown_department"),
            (str(good).encode(), json.dumps(_on(good, "dispatch", "good-1-d", 8, lead="chengguan",
                                                cooperating=["huanwei"])).encode(), None),
            # 环卫 tries to report in on 城管's call.
            (str(good).encode(), json.dumps(_on(good, "acknowledge", "nyw", 9, department="chengguan",
                                                actor=huanwei)).encode(), "not_your_whistle"),
            (str(good).encode(), json.dumps(_on(good, "acknowledge", "good-1-h", 10, department="huanwei",
                                                actor=huanwei)).encode(), None),
            (str(other).encode(), json.dumps(_report("good-2")).encode(), None),
        ]
        producer = KafkaProducer(**s.settings.client_config(), acks="all", max_request_size=1_000_000)
        sent = [producer.send(s.topics.intake, key=k, value=v).get(timeout=30) for k, v, _ in stream]
        producer.close()

        engine = Engine(runtime, s.settings)
        engine.run_until_idle()
        engine.close()

        letters = [DeadLetter.from_record(r) for r in read_topic(s.settings, s.topics.dead_letters)]
        # Each bad message is there once, with its original bytes, its source position and its reason.
        expected = sorted((meta.partition, meta.offset, reason, value)
                          for (_, value, reason), meta in zip(stream, sent) if reason)
        assert sorted((d.partition, d.offset, d.code, d.value) for d in letters) == expected
        assert all(d.topic == s.topics.intake and d.message for d in letters)
        assert engine.dead_letters.counts["invalid_command"] == 4
        # The good commands around them were applied, once each.
        assert set(stored_command_ids(runtime.app)) == {"good-1", "good-1-a", "good-1-d", "good-1-h", "good-2"}
        assert runtime.app.get_ticket(good).status == "dispatched"
        runtime.close()
