"""A department's desk in a real browser (Debian's Chromium through Playwright) against a real
`dispatch web` process: sign in, see only its own call with the time left, report in and handle
it — each click answered without a page reload; no raw id or English enum word on the page, no
console error; a form without its CSRF token refused; no session → the sign-in page. Screenshots
go to docs/screenshots/ (desktop and phone sizes)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.support import SHOTS, chromium, clean

pytestmark = pytest.mark.integration


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
        expect(page.locator(".empty")).to_contain_text("没有待办的案件")
        assert page.evaluate("window.__marker") == 1
        clean(page)

        page.goto(f"{site['base']}/tickets/{site['ticket']}")
        expect(page.locator(".timeline")).to_contain_text("处置")
        expect(page.locator(".timeline")).to_contain_text("报到")
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
        browser.close()
