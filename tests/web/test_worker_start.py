"""A web worker, once started, moves what it made starting (modules, reference data, the tables'
metadata) out of the cyclic collector's way (``gc.freeze``): its full collections, which fall
inside requests, no longer walk those objects again (docs/benchmarks-read-side.md)."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import pytest

from dispatch.bootstrap import bootstrap
from dispatch.web.worker import ENV, app


def test_a_web_worker_freezes_what_it_made_starting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = str(tmp_path / "w.db")
    bootstrap(db).close()
    monkeypatch.setenv(ENV, json.dumps({"db": db, "base_url": "http://127.0.0.1:9", "watchdog_every": 60}))
    gc.unfreeze()
    try:
        application = app()
        try:
            assert gc.get_freeze_count() > 10_000  # the worker's start-up, frozen
            runtime = application.state.service.runtime
            assert gc.is_tracked(runtime) and not any(runtime is o for o in gc.get_objects())  # not walked
        finally:
            application.state.service.stop()
            application.state.service.runtime.close()
    finally:
        gc.unfreeze()  # this test process's objects back in the collector's sight
