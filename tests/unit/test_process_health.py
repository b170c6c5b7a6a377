"""Each process's metrics and health endpoint, and what it says while a dependency is down:
one line when it goes, "still unavailable" at growing intervals, one line when it is back."""

from __future__ import annotations

import json
from typing import Any

import httpx2 as httpx
import pytest
import structlog
from sqlalchemy.exc import OperationalError

from consumers import metrics as h
from consumers.metrics import Availability, ProcessHealth


def test_metrics_healthz_and_readyz_follow_the_process() -> None:
    process = ProcessHealth("engine")
    port = process.serve(0)
    base = f"http://127.0.0.1:{port}"
    try:
        process.outcomes.labels("applied").inc(3)
        process.outcomes.labels("invalid_transition").inc()
        process.set_lag("dispatch.intake", 2, 17)
        metrics = httpx.get(f"{base}/metrics").text
        assert 'dispatch_commands_total{outcome="applied"} 3.0' in metrics
        assert 'dispatch_commands_total{outcome="invalid_transition"} 1.0' in metrics
        assert 'dispatch_consumer_lag{partition="2",topic="dispatch.intake"} 17.0' in metrics
        assert httpx.get(f"{base}/healthz").status_code == 200
        assert httpx.get(f"{base}/readyz").status_code == 200
        Availability(process, "engine").failed(OperationalError("SELECT 1", {}, Exception("refused")), 0.5)
        ready = httpx.get(f"{base}/readyz")
        assert ready.status_code == 503 and "database" in ready.json()["down"]
        assert 'dispatch_dependency_up{dependency="database"} 0.0' in httpx.get(f"{base}/metrics").text
        Availability(process, "engine").succeeded()
        assert httpx.get(f"{base}/readyz").status_code == 200
    finally:
        process.close()


def test_a_dependency_down_for_a_while_is_said_in_a_few_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(h.time, "monotonic", lambda: clock[0])
    lines: list[dict[str, Any]] = []
    with structlog.testing.capture_logs() as captured:
        watch = Availability(None, "engine")
        error = OperationalError("SELECT 1", {}, Exception("connection refused"))
        for _ in range(600):  # ten minutes of attempts, one a second
            watch.failed(error, 1.0)
            clock[0] += 1
        watch.succeeded()
        lines = [dict(c) for c in captured]
    events = [line["event"] for line in lines]
    assert events[0] == "database unavailable; retrying"
    assert events[-1] == "dependencies available again" and lines[-1]["down_s"] == pytest.approx(600, abs=1)
    still = events.count("database still unavailable")
    assert 3 <= still <= 8, events  # not 600 lines: 5 s, 10 s, 20 s … apart
    json.dumps(lines)  # every line is a plain record
