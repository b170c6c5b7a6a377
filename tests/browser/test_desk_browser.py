"""A department's desk in a real browser (Debian's Chromium through Playwright) against a real
`dispatch web` process: sign in, see only its own call with the time left, report in and handle
it — each click answered without a page reload; no raw id or English enum word on the page, no
console error; a form without its CSRF token refused; no session → the sign-in page. Screenshots
go to docs/screenshots/ (desktop and phone sizes)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from dispatch import accounts
from dispatch import commands as c
from dispatch.actions import act
from dispatch.bootstrap import bootstrap

pytestmark = pytest.mark.integration
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ENGLISH = re.compile(r"\b(waiting|to_handle|lead|cooperating|dispatched|acknowledged|in_progress|reported|"
                     r"city_appearance|chengguan|huanwei|calendar|working)\b")


def _chromium() -> str:
    path = os.environ.get("DISPATCH_TEST_CHROMIUM") or shutil.which("chromium")
    assert path, "no Chromium: run scripts/chromium-local (scripts/test does)"
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def site(tmp_path: Path) -> Iterator[dict[str, Any]]:
    db = str(tmp_path / "desk.db")
    runtime = bootstrap(db)
    op = accounts.local_operator("op")
    accounts.add(runtime, op, name="cg", role="department", scope="城管", password="desk password 1")
    accounts.add(runtime, op, name="hw", role="department", scope="环卫", password="desk password 2")
    ticket = act(runtime, c.Report, op, grid="cj-shuiku-g01", category="市容环卫", description="路边垃圾堆积",
                 channel="patrol").ticket_id
    act(runtime, c.Accept, op, ticket_id=str(ticket))
    act(runtime, c.Dispatch, op, ticket_id=str(ticket))
    runtime.close()
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "dispatch", "--db", db, "web", "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert server.poll() is None and time.monotonic() < deadline, "dispatch web did not start"
        time.sleep(0.2)
    try:
        yield {"base": base, "ticket": str(ticket)}
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
        assert "Traceback" not in err, err


def _visible(page: Any) -> str:
    return str(page.inner_text("body"))


def _clean(page: Any) -> None:
    text = _visible(page)
    assert not UUID.search(text), text
    assert not ENGLISH.search(text), ENGLISH.search(text)


def test_a_desk_reports_in_and_handles_its_call_in_the_browser(site: dict[str, Any]) -> None:
    from playwright.sync_api import expect, sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 800})
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))

        page.goto(f"{site['base']}/desk")  # no session: the sign-in page
        expect(page).to_have_url(re.compile(r"/login$"))
        page.fill("input[name=name]", "cg")
        page.fill("input[name=password]", "wrong password 1")
        page.click("button[type=submit]")
        expect(page.locator(".error")).to_be_visible()
        page.fill("input[name=password]", "desk password 1")
        page.click("button[type=submit]")
        expect(page).to_have_url(re.compile(r"/desk$"))
        expect(page.locator("h1")).to_contain_text("城管 · 待办")
        call = page.locator("article.call")
        expect(call).to_have_count(1)
        expect(call).to_contain_text("市容环卫")
        expect(call).to_contain_text("待报到")
        expect(call.locator(".left")).to_contain_text("剩余")
        _clean(page)
        page.screenshot(path=str(SHOTS / "desk.png"), full_page=True)

        page.evaluate("window.__marker = 1")  # gone if the page reloads
        call.get_by_role("button", name="报到").click()
        expect(call).to_contain_text("待处置")
        call.locator("input[name=result]").fill("已清运")
        call.get_by_role("button", name="处置完成").click()
        expect(page.locator(".empty")).to_contain_text("没有待办的案件")
        assert page.evaluate("window.__marker") == 1
        _clean(page)

        page.goto(f"{site['base']}/tickets/{site['ticket']}")
        expect(page.locator(".timeline")).to_contain_text("处置")
        expect(page.locator(".timeline")).to_contain_text("报到")
        _clean(page)
        page.screenshot(path=str(SHOTS / "ticket.png"), full_page=True)

        # a form posted without its CSRF token is refused; nothing changes
        refused = context.request.post(f"{site['base']}/desk/{site['ticket']}/feedback",
                                       form={"message": "x"})
        assert refused.status == 403
        assert errors == [], errors

        phone = browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844},
                                    device_scale_factor=2, is_mobile=True)
        small = phone.new_page()
        small.goto(f"{site['base']}/login")
        small.fill("input[name=name]", "hw")
        small.fill("input[name=password]", "desk password 2")
        small.click("button[type=submit]")
        expect(small.locator("article.call")).to_have_count(1)  # its own cooperating call only
        expect(small.locator("article.call")).to_contain_text("协办")
        small.screenshot(path=str(SHOTS / "desk-phone.png"), full_page=True)
        _clean(small)
        browser.close()
