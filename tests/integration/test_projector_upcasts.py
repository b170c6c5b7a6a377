"""The live Kafka projector upcasts old event versions: the hand-computed scenario published to
the ticket-events topic as relays before the class versions wrote it (``Evaluated`` without
``method``, ``Handled`` without ``call_id``, no ``class_version``) projects to exactly the
figures of the current shape, and the scenario's hand-computed ones."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import yaml

from consumers.projector import Projector
from dispatch.adapters.kafka import make_producer
from dispatch.bootstrap import bootstrap
from dispatch.projections.decode import records_from_notifications
from dispatch.projections.records import record_from_json, record_to_json
from tests.integration.kafka_support import stack
from tests.unit.test_sla_scenario import AS_OF, DEPARTMENTS, REFERENCE, assert_figures, cli_json, play, rows_by

pytestmark = pytest.mark.integration
VIEWS = [("sla", "--by", "department"), ("sla", "--by", "community"), ("dashboard", "--street", "s1")]


def _v1(raw: bytes) -> bytes:
    body = json.loads(raw)
    body.pop("class_version")
    if body["type"] == "Evaluated":
        del body["data"]["method"]
    if body["type"] == "Handled":
        del body["data"]["call_id"]
    return json.dumps(body, ensure_ascii=False).encode()


def test_the_live_projector_reads_v1_events_from_the_wire_as_v2(tmp_path: Path) -> None:
    ref = tmp_path / "reference.yaml"
    ref.write_text(yaml.safe_dump(REFERENCE, allow_unicode=True), encoding="utf-8")
    source = bootstrap(str(tmp_path / "source.db"), reference_file=ref)
    try:
        play(source)
        records = records_from_notifications(source.app.recorder.select_notifications(1, 100_000), source.app.mapper)
    finally:
        source.close()
    current = [(str(r.ticket_id).encode(), record_to_json(r)) for r in records]
    old = [(key, _v1(value)) for key, value in current]
    assert any(b'"Evaluated"' in v and b'"method"' not in v for _, v in old)
    # what the projector decodes each message into: the current shape
    decoded = [record_from_json(value) for _, value in old]
    assert {r.data["method"] for r in decoded if r.type == "Evaluated"} == {"callback"}
    assert all("call_id" in r.data for r in decoded if r.type == "Handled")

    figures = {}
    for name, messages in (("current", current), ("old", old)):
        (tmp_path / name).mkdir()
        with stack(tmp_path / name, f"upcast-{name}") as s:
            producer = make_producer(s.settings)
            for key, value in messages:  # keyed by ticket: each ticket's events in order
                producer.send(s.topics.ticket_events, key=key, value=value)
            producer.flush()
            producer.close()
            db = str(tmp_path / f"{name}.db")
            runtime = bootstrap(db, reference_file=ref)
            try:
                projector = Projector(runtime, s.settings, group=f"{s.settings.prefix}{uuid.uuid4().hex[:6]}")
                projector.run_until_idle()
                assert projector.counts["dead"] == 0
                projector.close()
            finally:
                runtime.close()
            figures[name] = [cli_json(db, *view, "--as-of", AS_OF) for view in VIEWS]
    assert figures["old"] == figures["current"]
    rows = rows_by(figures["old"][0], "department")
    for dept, expected in DEPARTMENTS.items():
        assert_figures(rows[dept], expected)
