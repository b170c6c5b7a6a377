"""The dashboards, the big screen and the analysts' page without a browser: what each person
may open, that the page's figures are the dashboard's, that a big screen's display token
outlives sessions but opens nothing else, and that exports are downloads with personal data
masked."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from dispatch.domain.errors import InvalidCommand
from dispatch.service import accounts, cockpit, queries
from tests.web.support import START, Api, page_sign_in

TZ = ZoneInfo("Asia/Shanghai")


def _sign_in(api: Api, name: str) -> None:
    accounts.set_password(api.runtime, accounts.local_operator("op"), name, "page password 1")
    r = page_sign_in(api.client, name, "page password 1", follow_redirects=False)
    assert r.status_code == 303


def _screen_key(api: Api, street: str = "caojing") -> str:
    return accounts.issue_display_token(api.runtime, accounts.local_operator("op"), street, label="大屏").text


def _closed_ticket(api: Api, description: str = "垃圾堆放") -> str:
    ticket = api.report(description=description)
    api.step("disp-a", ticket, "accept")
    api.step("disp-a", ticket, "dispatch")
    api.step("desk-cg", ticket, "acknowledge")
    api.step("desk-cg", ticket, "handle", {"result": "已清运"})
    api.step("desk-cg", ticket, "feedback", {"message": "已处理"})
    api.step("disp-a", ticket, "evaluate", {"satisfaction": "satisfied", "resolved": True})
    api.step("disp-a", ticket, "close")
    return ticket


def _board_in_page(html: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="board-data">(.*?)</script>', html, re.S)
    assert found, html[:500]
    return dict(json.loads(found.group(1)))


def test_periods_are_local_calendar_periods_holding_the_instant(api: Api) -> None:
    at = datetime(2026, 11, 26, 1, 30, tzinfo=TZ)  # a Thursday, early morning in Shanghai (17:30 UTC the day before)
    today = cockpit.period_window(api.runtime, "today", at)
    assert (today.start, today.end) == (datetime(2026, 11, 26, tzinfo=TZ), datetime(2026, 11, 27, tzinfo=TZ))
    week = cockpit.period_window(api.runtime, "week", at)
    assert (week.start, week.end) == (datetime(2026, 11, 23, tzinfo=TZ), datetime(2026, 11, 30, tzinfo=TZ))
    month = cockpit.period_window(api.runtime, "month", at)
    assert (month.start, month.end) == (datetime(2026, 11, 1, tzinfo=TZ), datetime(2026, 12, 1, tzinfo=TZ))
    assert month.as_of == at
    with pytest.raises(InvalidCommand):  # the whole history is the CLI's question, not a page's
        cockpit.period_window(api.runtime, "all", at)


def test_the_page_shows_the_dashboards_figures_its_trend_map_and_newest_tickets(api: Api) -> None:
    closed = _closed_ticket(api)
    api.report(description="井盖缺失")
    _sign_in(api, "lead-a")
    r = api.client.get("/dashboard?period=today")
    assert r.status_code == 200
    data = _board_in_page(r.text)
    now = api.clock.now()
    expected = queries.dashboard(api.runtime, street="caojing", period=cockpit.period_window(api.runtime, "today", now))
    for figure in ("open", "reported", "closed", "ack_overdue", "handle_overdue", "satisfaction_rate", "composite"):
        assert data["figures"][figure] == expected[figure], figure
    assert (data["figures"]["reported"], data["figures"]["closed"], data["figures"]["open"]) == (2, 1, 1)
    # the trend adds up to the period's figures; the map's grids to its open work
    assert sum(day["reported"] for day in data["trend"]) == 2 and sum(day["closed"] for day in data["trend"]) == 1
    assert sum(g["open"] for g in data["grids"].values()) == data["figures"]["open"]
    newest = [t["ticket_id"] for t in data["latest"]]
    assert newest[1] == closed and data["latest"][1]["status"] == "closed"
    assert data["latest"][0]["category_name"] == "市容环卫" and data["latest"][0]["case_no"].startswith("CAOJING-")
    assert "城管" in [d["name"] for d in data["scorecard"]]
    # as of just after the feedback (a step a minute from 09:01): time travel
    before = (START + timedelta(minutes=6, seconds=30)).astimezone(TZ).strftime("%Y-%m-%dT%H:%M:%S")
    past = api.client.get("/dashboard/data", params={"period": "today", "as_of": before}).json()
    assert past["figures"]["reported"] == 1 and past["latest"][0]["ticket_id"] == closed
    assert past["latest"][0]["status"] == "feedback_given" and past["figures"]["closed"] == 0
    assert past["as_of"].startswith(before[:16])


def test_who_sees_which_dashboard(api: Api) -> None:
    _sign_in(api, "lead-a")  # a leader of 漕泾镇
    assert api.client.get("/dashboard/data", params={"street": "xinqi"}).status_code == 403
    assert api.client.get("/dashboard/data", params={"community": "cj-shuiku"}).json()["figures"]["name"] == "水库村"
    _sign_in(api, "desk-cg")  # a department desk sees no place's figures
    assert api.client.get("/dashboard/data").status_code == 403
    assert "驾驶舱" not in api.client.get("/desk").text
    api.client.cookies.clear()
    assert api.client.get("/dashboard", follow_redirects=False).headers["location"] == "/login"
    assert api.client.get("/dashboard/data").status_code == 401


def test_a_display_token_outlives_sessions_and_opens_one_streets_figures_only(api: Api) -> None:
    api.report()
    key = _screen_key(api)
    _sign_in(api, "lead-a")
    opened = api.client.get(f"/screen?key={key}", follow_redirects=False)
    assert opened.status_code == 303 and opened.headers["location"] == "/screen"  # the key leaves the address bar
    cookie = opened.headers["set-cookie"].lower()
    assert "httponly" in cookie and "path=/screen" in cookie and "samesite=strict" in cookie
    screen = api.client.get("/screen")
    assert screen.status_code == 200 and "漕泾镇" in screen.text and key not in screen.text
    # the session ends (8 hours on); the screen goes on
    api.clock.advance(timedelta(hours=9))
    assert api.client.get("/dashboard/data").status_code == 401
    assert api.client.get("/screen/data").json()["figures"]["reported"] >= 0
    assert api.client.get("/screen").status_code == 200
    # it reads only its own street, and writes nothing anywhere
    assert api.client.get("/screen/data", params={"street": "xinqi"}).status_code == 403
    assert api.client.get("/screen/data", params={"community": "xq-baihe"}).status_code == 403
    assert api.client.get("/api/tickets", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    r = api.client.post("/api/tickets", headers={"Authorization": f"Bearer {key}"},
                        json={"grid": "cj-shuiku-g01", "category": "city_appearance", "description": "x"})
    assert r.status_code == 401
    assert page_sign_in(api.client, key, key).status_code == 200  # just a failed sign-in
    # revoked: the screen says so, and does not fall back to a sign-in page
    accounts.revoke(api.runtime, accounts.local_operator("op"), key.split("_")[1])
    gone = api.client.get("/screen", follow_redirects=False)
    assert gone.status_code == 401 and "大屏链接" in gone.text
    assert api.client.get("/screen/data").status_code == 401


def test_only_the_streets_leader_dispatcher_or_an_admin_makes_a_screen_link(api: Api) -> None:
    from dispatch.domain.errors import Forbidden

    lead_a = accounts.identity_of(api.runtime, "lead-a")
    assert accounts.issue_display_token(api.runtime, lead_a, "漕泾镇").text.startswith("dsd_")
    for name, street in (("lead-a", "xinqi"), ("desk-cg", "caojing"), ("ana", "caojing")):
        with pytest.raises(Forbidden):
            accounts.issue_display_token(api.runtime, accounts.identity_of(api.runtime, name), street)


def test_an_analyst_downloads_exports_with_contact_details_masked(api: Api) -> None:
    _closed_ticket(api, description="张先生来电13812345678，邮箱 zhang@example.com，身份证310104198001011234")
    _sign_in(api, "ana")
    page = api.client.get("/analysis", params={"by": "department"})
    assert page.status_code == 200 and "城管" in page.text and "导出数据" in page.text
    day = START.date().isoformat()
    r = api.client.get("/analysis/export", params={"kind": "tickets", "format": "csv", "from": day, "to": day})
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    assert r.headers["content-disposition"].endswith('.csv"')
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert len(rows) == 1 and rows[0]["category_name"] == "市容环卫"
    assert "138****5678" in rows[0]["description"] and "13812345678" not in r.text
    assert "z***@example.com" in rows[0]["description"] and "310104********1234" in rows[0]["description"]
    events = api.client.get("/analysis/export", params={"kind": "events", "format": "csv"})
    assert "Reported" in events.text and "13812345678" not in events.text
    parquet = api.client.get("/analysis/export", params={"kind": "sla", "format": "parquet"})
    assert parquet.status_code == 200 and parquet.content[:4] == b"PAR1"
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.num_rows == 3  # the lead call and its two cooperating ones
    assert table.column("department_name").to_pylist()[0] == "城管" and table.column("ack_on_time").to_pylist()[0]
    audit = accounts.audit_log(api.runtime, accounts.local_operator("op"), 5)
    assert any(a["action"] == "export" and a["who"] == "ana" for a in audit)
    _sign_in(api, "lead-a")  # a leader sees figures, not the rows behind them
    assert api.client.get("/analysis/export", params={"kind": "tickets"}).status_code == 403
    assert api.client.get("/analysis").status_code == 403


def test_the_content_security_policy_allows_only_the_configured_tile_server(tmp_path: Any) -> None:
    from tests.web.support import make_api

    made = make_api(tmp_path, map_tiles="https://tiles.intranet.example/{z}/{x}/{y}.png")
    with made.client:
        policy = made.client.get("/login").headers["content-security-policy"]
    made.runtime.close()
    assert "img-src 'self' data: https://tiles.intranet.example;" in policy
    assert "script-src" not in policy and "default-src 'self'" in policy


def test_an_analyst_replays_the_period_under_rules_edited_on_the_page(api: Api) -> None:
    import yaml

    _closed_ticket(api)  # dispatched, reported in 1 minute later, handled 1 minute after that
    _sign_in(api, "ana")
    page = api.client.get("/analysis", params={"by": "department"}).text
    csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', page).group(1)  # type: ignore[union-attr]
    shown = re.search(r'<textarea name="rules"[^>]*>(.*?)</textarea>', page, re.S).group(1)  # type: ignore[union-attr]
    import html

    rules = yaml.safe_load(html.unescape(shown))
    assert {"sla", "categories", "working_hours"} <= set(rules)  # the rules in force, to edit

    def what_if(body: dict[str, Any], **form: str) -> Any:
        return api.client.post("/analysis/what-if", data={"csrf": csrf, "by": "department", "from": "", "to": "",
                                                          "rules": yaml.safe_dump(body, allow_unicode=True), **form})

    same = what_if(rules)
    assert same.status_code == 200 and "按这些规则，各项指标都不变" in same.text
    assert re.search(r'id="what-if-changed">0<', same.text)
    for rule in rules["sla"]:  # one calendar minute for everything: the handling, two minutes in, turns late
        rule.update(ack_minutes=1, handle_minutes=1, feedback_minutes=1, time_basis="calendar")
    tight = what_if(rules)
    assert tight.status_code == 200, tight.text
    figures = tight.text.split('id="what-if-figures"')[1].split("</table>")[0]
    assert "处置及时率" in figures and "100.0%" in figures and "0.0%" in figures and "-100.0 个百分点" in figures
    assert re.search(r'id="what-if-changed">[1-9]', tight.text)
    listing = tight.text.split('id="what-if-changed-list"')[1].split("</table>")[0]
    assert "处置" in listing and "按时" in listing and "超时" in listing and "城管" in listing
    rules["departments"] = [{"id": "chengguan", "name": "城市管理局"}]
    refused = what_if(rules)
    assert refused.status_code == 400 and "规则只能包含" in refused.text
    assert "Reference" not in refused.text and "only" not in refused.text  # Chinese only
    assert what_if(rules, csrf="0" * 64).status_code == 403  # a stale or forged form changes nothing
    _sign_in(api, "lead-a")  # a leader sees figures, not a what-if
    leader_page = api.client.get("/analysis")
    assert leader_page.status_code == 403
