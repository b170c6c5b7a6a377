"""A department's desk in a real browser (Debian's Chromium through Playwright) against a real
`dispatch web` process: sign in, see only its own call with the time left, report in and handle
it — each click answered without a page reload; no raw id or English enum word on the page, no
console error; a form without its CSRF token refused; no session → the sign-in page. Screenshots
go to docs/screenshots/ (desktop and phone sizes)."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx2 as httpx
import pytest

from tests.browser.support import SHOTS, chromium, clean

pytestmark = pytest.mark.integration


def _api_session(base: str) -> dict[str, str]:
    token = httpx.post(f"{base}/api/session", json={"name": "boss", "password": "admin password 1"}).json()["token"]
    return {"Authorization": f"Bearer {token}"}


def _dispatched(base: str, headers: dict[str, str], category: str) -> str:
    made = httpx.post(f"{base}/api/tickets", headers=headers,
                      json={"grid": "cj-shuiku-g01", "category": category, "description": "路口信号灯不亮"})
    ticket = str(made.json()["ticket_id"])
    for step in ("accept", "dispatch"):
        assert httpx.post(f"{base}/api/tickets/{ticket}/{step}", headers=headers, json={}).status_code == 200
    return ticket


def test_a_desk_reports_in_and_handles_its_call_in_the_browser(site: dict[str, Any]) -> None:
    from playwright.sync_api import expect, sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
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
        clean(page)
        page.fill("input[name=password]", "desk password 1")
        page.click("button[type=submit]")
        expect(page).to_have_url(re.compile(r"/desk$"))
        expect(page.locator("h1")).to_contain_text("城管 · 待办")
        call = page.locator("article.call")
        expect(call).to_have_count(1)
        expect(call).to_contain_text("市容环卫")
        expect(call).to_contain_text("待报到")
        expect(call.locator(".left")).to_contain_text("剩余")
        clean(page)
        page.screenshot(path=str(SHOTS / "desk.png"), full_page=True)

        page.evaluate("window.__marker = 1")  # gone if the page reloads
        call.get_by_role("button", name="报到").click()
        expect(call).to_contain_text("待处置")
        call.locator("input[name=result]").fill("已清运")
        call.get_by_role("button", name="处置完成").click()
        expect(page.locator("#todo .empty")).to_contain_text("没有待办的案件")
        feedback = page.locator("#to-feedback")  # as the lead, it tells the reporter the result
        feedback.locator("input[name=message]").fill("垃圾已清运")
        feedback.get_by_role("button", name="反馈").click()
        expect(page.locator("#to-feedback")).to_have_count(0)
        assert page.evaluate("window.__marker") == 1
        clean(page)

        # a new call arrives (the grid centre whistles through the API): a badge on the next refresh
        boss = _api_session(site["base"])
        other = _dispatched(site["base"], boss, "道路交通")  # 交警 leads, 城管 cooperates, not 环卫
        page.evaluate("htmx.ajax('GET', '/desk/calls', {target: '#calls'})")
        expect(page.locator("#new-calls")).to_have_text("新 1")
        expect(page.locator("article.call")).to_have_count(1)

        page.goto(f"{site['base']}/tickets/{site['ticket']}")
        expect(page.locator(".timeline")).to_contain_text("处置")
        expect(page.locator(".timeline")).to_contain_text("报到")
        expect(page.locator(".timeline .clock").first).to_contain_text("受理期限")  # the SLA clock after each step
        expect(page.locator(".timeline .clock").nth(2)).to_contain_text("报到期限")
        clean(page)
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
        clean(small)
        # posting a form for another department's call, with a good CSRF token: refused, nothing changes
        token = small.evaluate("document.body.getAttribute('hx-headers')")
        refused = phone.request.post(f"{site['base']}/desk/{other}/acknowledge",
                                     headers={"X-CSRF-Token": json.loads(token)["X-CSRF-Token"]})
        assert "环卫" in refused.text() and 'role="alert"' in refused.text()  # shown where it was asked
        assert httpx.get(f"{site['base']}/api/tickets/{other}", headers=boss).json()["version"] == 3
        # a session that has ended (signed out elsewhere) is sent to sign-in
        kept = phone.cookies()
        small.click("button.link")  # 退出
        expect(small).to_have_url(re.compile(r"/login$"))
        small.screenshot(path=str(SHOTS / "login-phone.png"), full_page=True)
        phone.add_cookies(kept)
        small.goto(f"{site['base']}/desk")
        expect(small).to_have_url(re.compile(r"/login$"))
        browser.close()


def test_a_new_call_shows_a_system_notification_on_the_desk(site: dict[str, Any]) -> None:
    """The Notifications API (allowed by the person): a new call pushed to the desk shows one,
    with its case number; the page asks for the permission with a button, not on load."""
    from playwright.sync_api import expect, sync_playwright

    spy = """
      window.__shown = [];
      function Spy(title, options) { window.__shown.push({title: title, body: (options || {}).body || ""}); }
      Spy.permission = "default";
      Spy.requestPermission = function () { Spy.permission = "granted"; return Promise.resolve("granted"); };
      window.Notification = Spy;
    """
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        context = browser.new_context(locale="zh-CN")
        context.add_init_script(spy)
        page = context.new_page()
        page.goto(f"{site['base']}/login")
        page.fill("input[name=name]", "cg")
        page.fill("input[name=password]", "desk password 1")
        page.click("button[type=submit]")
        expect(page).to_have_url(re.compile(r"/desk$"))
        ask = page.locator("#notify-permission")
        expect(ask).to_be_visible()
        ask.click()
        expect(ask).to_be_hidden()
        page.wait_for_function("window.dispatchLive && window.dispatchLive.opened > 0", timeout=20_000)
        ticket = _dispatched(site["base"], _api_session(site["base"]), "市容环卫")  # 城管 leads
        case = httpx.get(f"{site['base']}/api/tickets/{ticket}", headers=_api_session(site["base"])).json()["case_no"]
        page.wait_for_function("window.__shown.length > 0", timeout=20_000)
        shown = page.evaluate("window.__shown")
        assert shown[0]["title"] == f"新派单 {case}" and "市容环卫" in shown[0]["body"], shown
        browser.close()
