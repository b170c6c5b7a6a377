"""The requests' threads are few (``dispatch web --threads``, default 4): a request holds one only
while it works. A write waiting for its batch's transaction (from the API, a desk's form or
Open311), and a long what-if or export, leave them to everyone else — with one thread, a read is
answered while each of them waits; and none of them waits on the event loop."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from starlette.responses import PlainTextResponse

from dispatch.web import screens
from tests.web.support import Api, GRID_A, make_api, sign_in_page

DEADLINE = 20.0


def _while_a_write_waits(api: Api, write: Any) -> Any:
    """``write()`` started while the writer thread cannot record anything; a read (and
    ``/healthz``) answered while it waits; what ``write`` answered once the transaction ran."""
    with ThreadPoolExecutor(3) as pool:
        ticket = api.report()
        service = api.client.app.state.service  # type: ignore[attr-defined]
        handed = threading.Event()
        hand_over = service.commit.hand_over

        def noted(command: Any) -> Any:
            handed.set()
            return hand_over(command)

        service.commit.hand_over = noted
        with service._write_lock:  # the writer thread cannot record anything: the next write waits
            writing = pool.submit(write)
            assert handed.wait(DEADLINE)
            healthy = pool.submit(api.client.get, "/healthz")
            reading = pool.submit(api.get, "disp-a", f"/api/tickets/{ticket}")
            assert healthy.result(timeout=DEADLINE).status_code == 200
            assert reading.result(timeout=DEADLINE).json()["ticket_id"] == ticket
            assert not writing.done()
        return writing.result(timeout=DEADLINE)  # answered once the transaction could run


def test_a_write_waiting_for_its_transaction_leaves_the_thread_to_a_read(tmp_path: Path) -> None:
    api = make_api(tmp_path, threads=1)
    with api.client:
        assert _while_a_write_waits(api, api.report)
    api.runtime.close()


def test_a_desk_form_waiting_for_its_transaction_leaves_the_thread_to_a_read(tmp_path: Path) -> None:
    api = make_api(tmp_path, threads=1)
    with api.client:
        ticket = api.report()
        api.step("disp-a", ticket, "accept")
        api.step("disp-a", ticket, "dispatch", {"lead": "chengguan", "cooperating": ["huanwei"]})
        csrf = sign_in_page(api, "desk-cg")
        answered = _while_a_write_waits(api, lambda: api.client.post(f"/desk/{ticket}/acknowledge",
                                                                     headers={"X-CSRF-Token": csrf}))
        assert answered.status_code == 200
        assert api.get("disp-a", f"/api/tickets/{ticket}").json()["calls"][0]["answer"] == "acknowledged"
    api.runtime.close()


def test_an_open311_report_waits_for_its_transaction_off_the_event_loop(tmp_path: Path) -> None:
    api = make_api(tmp_path, threads=1)
    with api.client:
        answered = _while_a_write_waits(api, lambda: api.client.post(
            "/open311/v2/requests.json", headers={"Content-Type": "application/x-www-form-urlencoded"},
            data={"service_code": "city_appearance", "description": "垃圾堆放", "address_id": GRID_A,
                  "api_key": api.tokens["hot-a"]}))
        assert answered.status_code == 201 and answered.json()[0]["service_request_id"]
    api.runtime.close()


def test_a_long_export_leaves_the_thread_to_a_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    api = make_api(tmp_path, threads=1)
    started, finish = threading.Event(), threading.Event()

    def slow(request: Any) -> Any:
        started.set()
        finish.wait(DEADLINE)
        return PlainTextResponse("done")

    monkeypatch.setattr(screens, "_export", slow)
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
