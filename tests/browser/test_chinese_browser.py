"""Every page and every refusal a person meets on them is said in Chinese: signed out, a wrong
password, a locked account, each role's page, a refused step on the console and on a desk, a photo
that is not one, a photo too large for the phone form, a session that ended. The check reads what
the browser shows (``inner_text``) and fails on any Latin word but case numbers, user names and the
few units and formats a Chinese user reads as they are."""

from __future__ import annotations

import re
from typing import Any

import httpx2 as httpx
import pytest

from tests.browser.support import chromium, sign_in

pytestmark = pytest.mark.integration

CASE_NO = re.compile(r"\b[A-Z]+-\d{8}-[0-9A-Z]+\b")
LATIN_OK = {"JPEG", "PNG", "WebP", "GIF", "MB", "KB", "WGS", "CSV", "Parquet"}  # formats and units, read as they are
LATIN = re.compile(r"[A-Za-z][A-Za-z_]+")


def _foreign(page: Any) -> list[str]:
    """The Latin words a person sees on the page, case numbers and the signed-in user's name aside."""
    shown = str(page.evaluate("""() => {
        const copy = document.body.cloneNode(true);
        copy.querySelectorAll('.who, .uid, script, style, .leaflet-control-attribution').forEach(e => e.remove());
        document.body.appendChild(copy); copy.hidden = false;
        const text = copy.innerText; copy.remove(); return text; }"""))
    shown = CASE_NO.sub(" ", shown)
    return sorted({w for w in LATIN.findall(shown) if w not in LATIN_OK})



def test_every_page_and_every_refusal_is_in_chinese(site: dict[str, Any]) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, ticket = site["base"], site["ticket"]
    seen: dict[str, list[str]] = {}

    def check(page: Any, what: str) -> None:
        seen[what] = _foreign(page)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])

        def person(**options: Any) -> Any:
            return browser.new_context(locale="zh-CN", **options).new_page()

        # signed out; a wrong password; a locked account (told only in local minutes)
        stranger = person()
        stranger.goto(f"{base}/desk")
        check(stranger, "sign-in page")
        sign_in(stranger, base, "hw", "wrong password")
        expect(stranger.locator(".error")).to_contain_text("用户名或密码不正确")
        check(stranger, "wrong password")
        for _ in range(4):
            sign_in(stranger, base, "hw", "wrong password")
        sign_in(stranger, base, "hw", "desk password 2")  # locked: told only to the right password
        expect(stranger.locator(".error")).to_contain_text("账户已暂时锁定")
        # local minutes, with the date in front when the lock ends after local midnight (a run
        # between 23:40 and 24:00 in Shanghai)
        assert re.search(r"请于 (\d\d月\d\d日 )?\d\d:\d\d 后再试", stranger.locator(".error").inner_text())
        check(stranger, "locked account")

        # the supervisor's phone: the form, a photo that is not one, a photo too large
        phone = person(viewport={"width": 390, "height": 844}, is_mobile=True)
        sign_in(phone, base, "sup", "field password 1")
        check(phone, "report page")
        phone.fill("textarea[name=description]", "路灯不亮")
        phone.set_input_files("input[name=photo]", {"name": "scene.jpg", "mimeType": "image/jpeg",
                                                     "buffer": b"this is no picture"})
        phone.click("form.report button[type=submit]")
        expect(phone.locator(".error").first).to_contain_text("照片")
        expect(phone.locator("textarea[name=description]")).to_have_value("路灯不亮")  # what was typed stays
        check(phone, "a photo that is not one")
        phone.set_input_files("input[name=photo]", {"name": "huge.jpg", "mimeType": "image/jpeg",
                                                     "buffer": b"\xff" * (11 * 1024 * 1024)})
        expect(phone.locator("#photo-error")).to_contain_text("照片太大")
        assert phone.evaluate("document.getElementById('photo').files.length") == 0  # it never travels
        check(phone, "a photo too large")
        phone.goto(f"{base}/tickets/{ticket}")
        expect(phone.locator("h1")).to_be_visible()
        check(phone, "ticket page")

        # the console: a refused step (a duplicate of a case number that does not exist)
        centre = person()
        sign_in(centre, base, "disp", "centre password 1")
        centre.goto(f"{base}/console")
        check(centre, "console")
        token = httpx.post(f"{base}/api/session", json={"name": "sup", "password": "field password 1"},
                           timeout=10).json()["token"]
        made = httpx.post(f"{base}/api/tickets", headers={"Authorization": f"Bearer {token}"}, timeout=10,
                          json={"grid": "cj-shuiku-g01", "category": "city_appearance", "description": "占道经营"})
        new = made.json()["ticket_id"]
        row = centre.locator(f"#list-new article[data-ticket='{new}']")
        row.locator("input[name=original_id]").fill("CAOJING-20200101-99999")
        row.get_by_role("button", name="重复件").click()
        expect(row.locator(".error")).to_contain_text("原案件：没有找到工单 CAOJING-20200101-99999")
        check(centre, "a refused step on the console")

        # a desk: its call is cancelled while the desk types a rejection; the step is refused
        desk = person()
        sign_in(desk, base, "cg", "desk password 1")
        call = desk.locator(f"article.call[data-ticket='{ticket}']")
        call.locator("input[name=reason]").fill("不属于本部门职责")
        boss = httpx.post(f"{base}/api/session", json={"name": "boss", "password": "admin password 1"},
                          timeout=10).json()["token"]
        cancelled = httpx.post(f"{base}/api/tickets/{ticket}/cancel", headers={"Authorization": f"Bearer {boss}"},
                               json={"reason": "重复上报"}, timeout=10)
        assert cancelled.status_code == 200, cancelled.text
        expect(call).to_have_class(re.compile("stale"))  # kept: someone is typing in it
        call.get_by_role("button", name="退单").click()
        expect(desk.locator(".error").first).to_contain_text("已经结束，不能再退单")
        check(desk, "a refused step on a desk")
        desk.goto(f"{base}/desk/history")
        check(desk, "the desk's history")

        # the leader's dashboard, the analyst's page, a page one's role may not open
        boss_page = person()
        sign_in(boss_page, base, "boss", "admin password 1")
        boss_page.goto(f"{base}/dashboard")
        expect(boss_page.locator("[data-figure=open]")).not_to_have_text("—")
        check(boss_page, "dashboard")
        boss_page.goto(f"{base}/analysis")
        check(boss_page, "analysis")
        desk.goto(f"{base}/console")
        check(desk, "a page not for this role")

        # a session that ended: the console's next step says so, and the next page is the sign-in
        centre.context.clear_cookies()
        row.get_by_role("button", name="受理").click()
        expect(centre.locator("#live-state")).to_contain_text("登录已过期，请重新登录")
        check(centre, "an ended session")
        centre.goto(f"{base}/console")
        expect(centre).to_have_url(re.compile(r"/login$"))
        check(centre, "signed out again")
        browser.close()
    assert {what: words for what, words in seen.items() if words} == {}
