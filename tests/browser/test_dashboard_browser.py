"""The dashboards in a real browser against a real ``dispatch web``:

- live: a ticket reported through the API, and later closed, appears on an open dashboard
  without a reload;
- time travel: the figures shown as of a past instant are those of
  ``dispatch --json dashboard --as-of`` at that instant;
- the big screen opened with its display token stays up, and live, after the session in the
  same browser ends; the token reads no other street and writes nothing;
- screenshots at 1366×768 (dashboard, analysis) and 1920×1080 (big screen); no console error,
  no raw id or English word on any page.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx2 as httpx
import pytest

from dispatch.bootstrap import bootstrap
from dispatch.service import accounts
from tests.browser.support import SHOTS, chromium, clean, sign_in
from tests.e2e.web import web_process

pytestmark = pytest.mark.integration
WAIT = 20_000  # ms: the read models catch up every second, the event stream looks every second


def _dispatch(db: str, *args: str) -> Any:
    done = subprocess.run([sys.executable, "-m", "dispatch", "--db", db, "--json", *args], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def street(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The last three days of 新碶街道, simulated (``dispatch demo``), a leader, an analyst, an
    admin and a big-screen link, served by a real ``dispatch web``."""
    db = str(tmp_path / "street.db")
    first = (datetime.now(ZoneInfo("Asia/Shanghai")) - timedelta(days=3)).date()
    demo = _dispatch(db, "demo", "--days", "3", "--start", first.isoformat())["demo"]
    runtime = bootstrap(db)
    op = accounts.local_operator("op")
    accounts.add(runtime, op, name="zhangwei", role="leader", scope="street:xinqi", password="leader password 1")
    accounts.add(runtime, op, name="ana", role="analyst", scope=None, password="analyst password 1")
    accounts.add(runtime, op, name="boss", role="admin", scope=None, password="admin password 1")
    key = accounts.issue_display_token(runtime, op, "xinqi", label="街道指挥中心").text
    runtime.close()
    with web_process("--db", db) as web:
        yield {"base": web.base, "db": db, "demo": demo, "key": key, "first": first}


class Browser:
    """One Chromium; every page it opens reports console errors, page errors and failed loads."""

    def __init__(self, p: Any):
        self.browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        self.errors: list[str] = []

    def context(self, width: int, height: int) -> Any:
        return self.browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai",
                                        viewport={"width": width, "height": height})

    def page(self, context: Any) -> Any:
        page = context.new_page()
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("response", lambda r: self.errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        return page



def _figures(page: Any) -> dict[str, Any]:
    return dict(page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('[data-figure]')]
        .map(e => [e.dataset.figure, JSON.parse(e.dataset.value)]))"""))


def _api(base: str, name: str, password: str) -> dict[str, str]:
    r = httpx.post(f"{base}/api/session", json={"name": name, "password": password})
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_a_dashboard_shows_a_ticket_reported_and_closed_through_the_api_without_a_reload(site: dict[str, Any]) -> None:
    from playwright.sync_api import expect, sync_playwright

    base = site["base"]
    boss, desk = _api(base, "boss", "admin password 1"), _api(base, "cg", "desk password 1")
    with sync_playwright() as p:
        b = Browser(p)
        page = b.page(b.context(1366, 768))
        sign_in(page, base, "disp", "centre password 1")
        page.goto(f"{base}/dashboard?period=today")
        expect(page.locator("#live")).to_have_text("实时")
        reported = _figures(page)["reported"]
        closed = _figures(page)["closed"]
        page.evaluate("() => { window.stillHere = true; }")  # gone if the page reloads

        made = httpx.post(f"{base}/api/tickets", headers=boss, json={
            "grid": "cj-shuiku-g02", "category": "city_appearance", "description": "广场路灯不亮"})
        assert made.status_code == 201, made.text
        ticket = made.json()["ticket_id"]
        case = httpx.get(f"{base}/api/tickets/{ticket}", headers=boss).json()["case_no"]
        expect(page.locator("[data-figure=reported]")).to_have_text(str(reported + 1), timeout=WAIT)
        newest = page.locator(f"#latest li[data-case='{case}']")
        expect(newest).to_contain_text("已上报", timeout=WAIT)
        expect(newest).to_contain_text("水库村")

        for who, step, body in ((boss, "accept", {}), (boss, "dispatch", {}), (desk, "acknowledge", {}),
                                (desk, "handle", {"result": "已更换灯泡"}), (desk, "feedback", {"message": "已修复"}),
                                (boss, "evaluate", {"satisfaction": "satisfied", "resolved": True}),
                                (boss, "close", {})):
            r = httpx.post(f"{base}/api/tickets/{ticket}/{step}", headers=who, json=body)
            assert r.status_code == 200, (step, r.text)
        expect(newest).to_contain_text("已办结", timeout=WAIT)
        expect(page.locator("[data-figure=closed]")).to_have_text(str(closed + 1), timeout=WAIT)
        # a write by another process (the CLI, on the same database) shows up as well
        by_cli = _dispatch(site["db"], "report", "--grid", "cj-shuiku-g01", "--category", "city_appearance",
                           "--description", "护栏倒伏")
        expect(page.locator(f"#latest li[data-case='{by_cli['case_no']}']")).to_be_visible(timeout=WAIT)
        expect(page.locator("[data-figure=reported]")).to_have_text(str(reported + 2), timeout=WAIT)
        assert page.evaluate("() => window.stillHere") is True
        clean(page)
        assert b.errors == [], b.errors
        b.browser.close()


def test_time_travel_shows_the_figures_of_dashboard_as_of_that_instant(street: dict[str, Any]) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, db = street["base"], street["db"]
    day = street["first"] + timedelta(days=1)
    instant = f"{day.isoformat()}T15:30"  # the middle of the simulated days (Asia/Shanghai)
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = Browser(p)
        page = b.page(b.context(1366, 768))
        sign_in(page, base, "zhangwei", "leader password 1")
        expect(page).to_have_url(re.compile(r"/dashboard$"))
        expect(page.locator("input[name=period][value=month]")).to_be_checked()  # this month, by default
        expect(page.locator("html[data-drawn]")).to_have_count(1, timeout=WAIT)  # the page has drawn its figures
        page.fill("#when", instant)
        page.click("#travel")
        expect(page.locator("#live")).to_contain_text(f"历史视图：截至 {day:%m-%d} 15:30", timeout=WAIT)
        told = page.locator("#period-text")
        expect(told).to_have_attribute("data-as-of", re.compile(f"^{day.isoformat()}T15:30:00"))
        shown = _figures(page)
        expected = _dispatch(db, "dashboard", "--street", "xinqi", "--from", told.get_attribute("data-from"),
                             "--to", told.get_attribute("data-to"), "--as-of", instant)
        assert expected["from"].startswith(f"{day:%Y-%m}-01T00:00:00")  # this month's, as the page says
        assert len(shown) >= 16
        for figure, value in shown.items():
            assert value == pytest.approx(expected[figure]), figure
        assert shown["reported"] > 0 and shown["closed"] > 0  # a moment with something to show
        ranked = page.locator("#units tbody tr").all_inner_texts()
        assert [row.split("\t")[0] for row in ranked[:len(expected["ranking"])]] == \
            [r["name"] for r in expected["ranking"]]
        assert "as_of=" in page.url  # the view can be shared as a link
        page.wait_for_timeout(500)  # the charts' animations settle
        page.screenshot(path=str(SHOTS / "dashboard.png"), full_page=True)
        clean(page)

        # back to now: live again, and the figures move on from the instant
        page.click("#now")
        expect(page.locator("#live")).to_have_text("实时", timeout=WAIT)
        assert told.get_attribute("data-as-of") > f"{day.isoformat()}T15:30:00"  # noqa: SIM300

        # an analyst's period table and a download
        analyst = b.page(b.context(1366, 768))
        sign_in(analyst, base, "ana", "analyst password 1")
        expect(analyst).to_have_url(re.compile(r"/analysis$"))
        analyst.fill("input[name=from]", street["first"].isoformat())
        analyst.fill("input[name=to]", (street["first"] + timedelta(days=2)).isoformat())
        analyst.click("form.choose button[type=submit]")
        expect(analyst.locator("#sla tbody")).to_contain_text("城管")
        with analyst.expect_download() as download:
            analyst.get_by_role("link", name="CSV").first.click()
        path = download.value.path()
        rows = Path(path).read_text(encoding="utf-8-sig").splitlines()
        assert rows[0].startswith("ticket_id,") and len(rows) > 50
        assert download.value.suggested_filename.startswith("dispatch-tickets-")
        analyst.screenshot(path=str(SHOTS / "analysis.png"), full_page=True)
        # 规则推演: the rules in force, report-in doubled, the same period again
        rules = analyst.locator("textarea[name=rules]")
        assert "ack_minutes: 30" in rules.input_value()
        rules.fill(rules.input_value().replace("ack_minutes: 30", "ack_minutes: 60"))
        analyst.get_by_role("button", name="推演").click()
        expect(analyst.locator("#what-if-figures")).to_contain_text("报到及时率", timeout=WAIT)
        assert int(analyst.locator("#what-if-changed").inner_text()) > 0
        analyst.locator("#what-if").screenshot(path=str(SHOTS / "analysis-what-if.png"))
        clean(analyst)
        assert b.errors == [], b.errors
        b.browser.close()


def test_the_big_screen_stays_up_and_live_after_the_session_ends(street: dict[str, Any]) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, key = street["base"], street["key"]
    boss = _api(base, "boss", "admin password 1")
    with sync_playwright() as p:
        b = Browser(p)
        wall = b.context(1920, 1080)
        signed_in = wall.new_page()  # somebody signed in on that machine (their own dashboard: not watched)
        sign_in(signed_in, base, "zhangwei", "leader password 1")
        screen = b.page(wall)
        screen.goto(f"{base}/screen?key={key}")
        expect(screen).to_have_url(re.compile(r"/screen$"))  # the key left the address bar
        expect(screen.locator("h1")).to_contain_text("新碶街道")
        expect(screen.locator("#live")).to_have_text("实时")
        open_before = _figures(screen)["open"]

        # the session ends (signed out in another tab); the screen neither leaves nor stops
        other = wall.new_page()  # (its own dashboard may well meet the ended session: not watched)
        other.goto(f"{base}/dashboard")
        other.get_by_role("button", name="退出").click()
        expect(other).to_have_url(re.compile(r"/login$"))
        assert wall.request.get(f"{base}/dashboard/data").status == 401
        made = httpx.post(f"{base}/api/tickets", headers=boss, json={
            "grid": "xq-baihe-g02", "category": "city_appearance", "description": "绿化带垃圾"})
        assert made.status_code == 201, made.text
        case = httpx.get(f"{base}/api/tickets/{made.json()['ticket_id']}", headers=boss).json()["case_no"]
        expect(screen.locator(f"#latest li[data-case='{case}']")).to_be_visible(timeout=WAIT)
        expect(screen.locator("[data-figure=open]")).to_have_text(str(open_before + 1), timeout=WAIT)
        expect(screen).to_have_url(re.compile(r"/screen$"))
        screen.wait_for_timeout(500)
        screen.screenshot(path=str(SHOTS / "screen.png"))
        clean(screen)

        # the display token reads its own street only and writes nothing
        assert wall.request.get(f"{base}/screen/data?street=caojing").status == 403
        bearer = {"Authorization": f"Bearer {key}"}
        assert wall.request.post(f"{base}/api/tickets", headers=bearer, data={
            "grid": "xq-baihe-g02", "category": "city_appearance", "description": "x"}).status == 401
        assert wall.request.get(f"{base}/api/tickets", headers=bearer).status == 401
        assert b.errors == [], b.errors
        b.browser.close()


def test_without_boundaries_the_grids_are_drawn_as_plain_tiles(tmp_path: Path) -> None:
    """A reference file without grid boundaries (the sample's places alone): the map is a tile
    per grid, coloured by its open work, still with names only."""
    from playwright.sync_api import expect, sync_playwright

    db = str(tmp_path / "plain.db")
    sample = Path(__file__).resolve().parents[2] / "dispatch" / "data" / "sample.yaml"
    _dispatch(db, "init", "--reference", str(sample))
    runtime = bootstrap(db)
    assert not runtime.reference.boundaries
    op = accounts.local_operator("op")
    accounts.add(runtime, op, name="zhangwei", role="leader", scope="street:caojing", password="leader password 1")
    grids = len([g for c in runtime.reference.communities_of_street("caojing")
                 for g in runtime.reference.grids_of_community(c.id)])
    runtime.close()
    _dispatch(db, "report", "--grid", "cj-shuiku-g01", "--category", "city_appearance", "--description", "垃圾堆放")
    with web_process("--db", db) as web, sync_playwright() as p:
        b = Browser(p)
        page = b.page(b.context(1366, 768))
        sign_in(page, web.base, "zhangwei", "leader password 1")
        expect(page.locator("#tiles .tile")).to_have_count(grids)
        expect(page.locator("#map")).to_be_hidden()
        one = page.locator("#tiles .tile[title^='水库村北片网格']")
        expect(one).to_have_attribute("title", re.compile("在办 1，超时 0"))
        clean(page)
        assert b.errors == [], b.errors
        b.browser.close()
