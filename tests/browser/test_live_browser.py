"""The working loop, pushed: a dispatcher and two department desks signed in at once, in a real
browser against a real ``dispatch web``.

- The dispatcher types feedback into a row of the console; meanwhile a supervisor's report (another
  person's step, through the API) reaches the console by the event stream: the new row is there, and
  the typed text, the focus and the caret are untouched.
- A whistle call reaches both desks, the lead's and a cooperating one's, with no timer on the pages:
  no element polls (``hx-trigger="every …"``) and every fragment the pages fetched followed a message
  of the event stream.
- The server is stopped: each page says it is reconnecting; a step is recorded while it is down; the
  server starts again on the same address and each page reconnects and shows that step.
- A report with a phone position shows a marker on the dashboard's map of reports.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from dispatch.bootstrap import bootstrap
from dispatch.domain import commands as c
from dispatch.service import accounts
from dispatch.service.actions import act
from tests.browser.support import SHOTS, chromium, clean, sign_in
from tests.e2e.web import web_process

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _setup(db: str) -> dict[str, Any]:
    runtime = bootstrap(db)
    op = accounts.local_operator("op")
    accounts.add(runtime, op, name="cg", role="department", scope="城管", password="desk password 1")
    accounts.add(runtime, op, name="hw", role="department", scope="环卫", password="desk password 2")
    accounts.add(runtime, op, name="sup", role="supervisor", scope="community:cj-shuiku", password="field password 1")
    accounts.add(runtime, op, name="disp", role="dispatcher", scope="street:caojing", password="centre password 1")
    accounts.add(runtime, op, name="zhang", role="leader", scope="street:caojing", password="leader password 1")
    # a ticket the lead has handled: its feedback box is on the console
    handled = str(act(runtime, c.Report, op, grid="cj-shuiku-g01", category="市容环卫", description="井盖缺失",
                      channel="patrol").ticket_id)
    act(runtime, c.Accept, op, ticket_id=handled)
    act(runtime, c.Dispatch, op, ticket_id=handled, lead="城管", cooperating=[])
    from dispatch.domain.identity import Identity

    desk = Identity(name="cg", role="department", scope_kind="department", scope=("chengguan",))
    act(runtime, c.Acknowledge, desk, ticket_id=handled, department="chengguan")
    act(runtime, c.Handle, desk, ticket_id=handled, department="chengguan", result="已补装")
    boundaries = runtime.reference.boundaries
    runtime.close()
    return {"handled": handled, "boundaries": boundaries}



def _token(base: str, name: str, password: str) -> str:
    answer = httpx.post(f"{base}/api/session", json={"name": name, "password": password}, timeout=10)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["token"])


def _no_polling(page: Any) -> None:
    """No element polls, and every fragment the page fetched followed a message of its stream."""
    assert page.locator("[hx-trigger*=every]").count() == 0
    counts = page.evaluate("window.dispatchLive")
    assert counts["fetches"] <= counts["messages"], counts


def test_pushed_updates_keep_what_is_typed_reach_both_desks_and_survive_a_restart(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    db = str(tmp_path / "live.db")
    made = _setup(db)
    port = _free_port()
    SHOTS.mkdir(parents=True, exist_ok=True)
    grid = made["boundaries"]["cj-shuiku-g02"]["coordinates"][0]
    lon, lat = (grid[0][0] + grid[1][0]) / 2, (grid[0][1] + grid[2][1]) / 2
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        errors: list[str] = []

        def person() -> Any:
            page = browser.new_context(locale="zh-CN").new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            return page

        with web_process("--db", db, port=port) as web:
            base = web.base
            centre, cg, hw = person(), person(), person()
            sign_in(centre, base, "disp", "centre password 1")
            sign_in(cg, base, "cg", "desk password 1")
            sign_in(hw, base, "hw", "desk password 2")
            centre.goto(f"{base}/console")
            for page in (centre, cg, hw):  # each page's stream is open before anything happens
                page.wait_for_function("window.dispatchLive && document.querySelector('[data-live-events]')")
            for page in (centre, cg, hw):
                expect(page.locator("#live-state")).to_be_hidden()

            # the dispatcher types feedback and keeps the caret in the middle of it
            box = centre.locator(f"#list-to_close article[data-ticket='{made['handled']}'] input[name=message]")
            box.click()
            box.type("已补装井盖，请核实")
            centre.evaluate("document.activeElement.setSelectionRange(3, 3)")
            sup = _token(base, "sup", "field password 1")
            report = httpx.post(f"{base}/api/tickets", headers={"Authorization": f"Bearer {sup}"}, timeout=10,
                                json={"category": "city_appearance", "description": "水库村南口垃圾满溢",
                                      "position": {"lat": lat, "lon": lon, "crs": "WGS84", "accuracy": 12}})
            assert report.status_code == 201, report.text
            ticket = report.json()["ticket_id"]
            expect(centre.locator(f"#list-new article[data-ticket='{ticket}']")).to_contain_text("水库村南口垃圾满溢")
            expect(box).to_have_value("已补装井盖，请核实")
            assert centre.evaluate("[document.activeElement.name, document.activeElement.selectionStart,"
                                   " document.activeElement.selectionEnd]") == ["message", 3, 3]
            row = centre.locator(f"#list-new article[data-ticket='{ticket}']")
            expect(row.locator(".spot")).to_contain_text("定位")  # the place: grid and position

            # accept and whistle: 城管 leads, 环卫 cooperates; both desks see the call, pushed
            row.get_by_role("button", name="受理").click()
            whistle = centre.locator(f"#list-to_dispatch article[data-ticket='{ticket}']")
            whistle.locator("select[name=lead]").select_option(label="城管")
            expect(whistle.locator("label.check", has_text="城管")).to_be_hidden()  # never its own cooperator
            whistle.locator("label.check", has_text="环卫").locator("input").check()
            whistle.get_by_role("button", name="吹哨派单").click()
            expect(whistle).to_have_count(0)
            expect(box).to_have_value("已补装井盖，请核实")  # the typed feedback outlived every update
            for desk in (cg, hw):
                expect(desk.locator(f"article.call[data-ticket='{ticket}']")).to_contain_text("待报到")
                _no_polling(desk)
            _no_polling(centre)
            clean(cg)
            cg.screenshot(path=str(SHOTS / "desk.png"), full_page=True)

            # the server goes away: every page says so
            stopped = web
        for page in (centre, cg, hw):
            expect(page.locator("#live-state")).to_contain_text("正在重连")
        runtime = bootstrap(db)  # a step while it is down: 环卫 reports in (from its own desk program)
        from dispatch.domain.identity import Identity

        act(runtime, c.Acknowledge, Identity(name="hw", role="department", scope_kind="department", scope=("huanwei",)),
            ticket_id=ticket, department="huanwei")
        runtime.close()
        with web_process("--db", db, port=port) as again:
            assert again.base == stopped.base
            for page in (centre, cg, hw):
                expect(page.locator("#live-state")).to_be_hidden(timeout=30_000)
            # each page caught up with what happened while it was away
            expect(hw.locator(f"article.call[data-ticket='{ticket}']")).to_have_count(0)
            expect(hw.locator(f"#following article[data-ticket='{ticket}']")).to_contain_text("主办 城管")
            expect(cg.locator(f"article.call[data-ticket='{ticket}']")).to_contain_text("待报到")
            expect(box).to_have_value("已补装井盖，请核实")

            # the report's marker on the dashboard's map of reports
            leader = person()
            sign_in(leader, again.base, "zhang", "leader password 1")
            expect(leader.locator("#map")).to_have_attribute("data-reports", "1")
            marker = leader.locator("#map path.leaflet-interactive[fill='#e67e22'], #map .marker-cluster").first
            expect(marker).to_be_visible()
            clean(leader)
        browser.close()
    assert errors == [], errors
