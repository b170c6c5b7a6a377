"""The requests' threads are few (``dispatch web --threads``, default 4): a request holds one only
while it works. A write waiting for its batch's transaction, and a long what-if or export (they
have threads of their own), leave them to everyone else — with one thread, a read is answered
while both wait."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from starlette.responses import PlainTextResponse

from dispatch.web import boards
from tests.web.support import make_api

DEADLINE = 20.0


def test_a_write_waiting_for_its_transaction_leaves_the_thread_to_a_read(tmp_path: Path) -> None:
    api = make_api(tmp_path, threads=1)
    with api.client, ThreadPoolExecutor(2) as pool:
        ticket = api.report()
        service = api.client.app.state.service  # type: ignore[attr-defined]
        handed = threading.Event()
        hand_over = service.commit.hand_over

        def noted(command: Any) -> Any:
            handed.set()
            return hand_over(command)

        service.commit.hand_over = noted
        with service._write_lock:  # the writer thread cannot record anything: the next write waits
            writing = pool.submit(api.report)
            assert handed.wait(DEADLINE)
            reading = pool.submit(api.get, "disp-a", f"/api/tickets/{ticket}")
            assert reading.result(timeout=DEADLINE).json()["ticket_id"] == ticket
            assert not writing.done()
        assert writing.result(timeout=DEADLINE)  # recorded once the transaction could run
        api.runtime.close()


def test_a_long_export_leaves_the_thread_to_a_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    api = make_api(tmp_path, threads=1)
    started, finish = threading.Event(), threading.Event()

    def slow(request: Any) -> Any:
        started.set()
        finish.wait(DEADLINE)
        return PlainTextResponse("done")

    monkeypatch.setattr(boards, "_export", slow)
    with api.client, ThreadPoolExecutor(2) as pool:
        ticket = api.report()
        exporting = pool.submit(api.client.get, "/analysis/export")
        try:
            assert started.wait(DEADLINE)
            reading = pool.submit(api.get, "disp-a", f"/api/tickets/{ticket}")
            assert reading.result(timeout=DEADLINE).json()["ticket_id"] == ticket
            assert not exporting.done()
        finally:
            finish.set()
        assert exporting.result(timeout=DEADLINE).text == "done"
        api.runtime.close()
