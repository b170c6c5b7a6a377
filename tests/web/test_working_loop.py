"""The working loop where people work: positions as data through every door, a cooperating desk
that follows its ticket until it closes, refusals in Chinese, and the live pages' streams scoped to
what each person may see."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

from coordTransform import wgs84_to_gcj02

from dispatch.service import accounts
from tests.web.support import Api, page_sign_in, sign_in_page as _sign_in

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _middle(api: Api, grid: str) -> tuple[float, float]:
    ring = api.runtime.reference.boundaries[grid]["coordinates"][0]
    return (ring[0][0] + ring[1][0]) / 2, (ring[0][1] + ring[2][1]) / 2


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# -- positions are data --------------------------------------------------------------------------------

def test_a_reported_position_is_kept_as_data_and_shown_at_every_door(api: Api) -> None:
    lon, lat = _middle(api, "cj-hutang-g02")
    gcj_lon, gcj_lat = wgs84_to_gcj02(lon, lat)
    ticket = api.report("hot-a", grid=None, position={"lat": gcj_lat, "lon": gcj_lon, "crs": "GCJ02",
                                                       "accuracy": 8.5})  # type: ignore[arg-type]
    shown = api.get("boss", f"/api/tickets/{ticket}").json()
    assert shown["grid"] == "cj-hutang-g02"
    position = shown["position"]
    assert position["given_in"] == "GCJ02" and position["accuracy"] == 8.5
    assert abs(position["lat"] - lat) < 2e-5 and abs(position["lon"] - lon) < 2e-5  # back in WGS-84
    assert shown["location"] is None  # no longer hidden in the text

    # Open311 GET returns it as lat/long
    key = api.tokens["hot-a"]
    [row] = api.client.get(f"/open311/v2/requests/{ticket}.json", params={"api_key": key}).json()
    assert abs(row["lat"] - lat) < 2e-5 and abs(row["long"] - lon) < 2e-5
    # and a report without a position has none
    other = api.report("sup-a")
    [plain] = api.client.get(f"/open311/v2/requests/{other}.json", params={"api_key": key}).json()
    assert plain["lat"] is None and plain["long"] is None

    # the analysts' export carries it
    _sign_in(api, "ana")
    exported = api.client.get("/analysis/export", params={"kind": "tickets", "format": "csv"})
    assert exported.status_code == 200, exported.text
    rows = {r["ticket_id"]: r for r in csv.DictReader(io.StringIO(exported.text.lstrip("\ufeff")))}
    assert rows[ticket]["lat"] == f"{position['lat']:.6f}" and rows[ticket]["lon"] == f"{position['lon']:.6f}"
    assert rows[other]["lat"] == "" and rows[other]["lon"] == ""


def test_the_console_row_shows_the_photo_and_the_place(api: Api) -> None:
    lon, lat = _middle(api, "cj-shuiku-g01")
    ticket = api.report("sup-a", grid=None, position={"lat": lat, "lon": lon})  # type: ignore[arg-type]
    _sign_in(api, "disp-a")
    body = api.client.get("/console/body").text
    row = body.split(f'data-key="t-{ticket}"', 1)[1].split("</article>", 1)[0]
    assert f"定位 {lat:.5f}, {lon:.5f}" in row and "水库村北片网格" in row
    page = api.client.get(f"/tickets/{ticket}").text
    assert 'id="spot-map"' in page and f'"lat": {round(lat, 7)}' in page.replace("\\u0026", "&")


def test_the_whistle_form_never_offers_the_lead_as_cooperating(api: Api) -> None:
    ticket = api.report("sup-a")
    api.step("disp-a", ticket, "accept")
    _sign_in(api, "disp-a")
    body = api.client.get("/console/body").text
    form = body.split(f'/console/{ticket}/dispatch"', 1)[1].split("</form>", 1)[0]
    lead = re.search(r'<option value="([a-z_]+)" selected>', form).group(1)  # type: ignore[union-attr]
    box = re.search(rf'<label class="check" hidden><input type="checkbox" name="cooperating" value="{lead}"\s+disabled>',
                    form)
    assert box, form


# -- a cooperating desk follows its ticket ---------------------------------------------------------------

def test_a_cooperating_desk_follows_the_ticket_it_reported_in_on_until_it_closes(api: Api) -> None:
    ticket = api.report("sup-a")
    case_no = api.get("boss", f"/api/tickets/{ticket}").json()["case_no"]
    api.step("disp-a", ticket, "accept")
    api.step("disp-a", ticket, "dispatch", {"lead": "chengguan", "cooperating": ["huanwei"]})
    _sign_in(api, "desk-hw")

    def following() -> str:
        page = api.client.get("/desk/calls").text
        return _text(page.split('id="following"', 1)[1].split("</section>", 1)[0])

    assert case_no not in following()  # not yet answered: it is a call to answer
    api.step("desk-hw", ticket, "acknowledge", {"department": "huanwei"})
    assert case_no in following() and "主办 城管：已派单，等待报到" in following()
    for step, body in (("acknowledge", {"department": "chengguan"}), ("handle", {"department": "chengguan", "result": "已清运"}),
                       ("feedback", {"message": "已清运"})):
        api.step("desk-cg", ticket, step, body)
        assert case_no in following()
    assert "已反馈，待评价" in following()
    api.step("disp-a", ticket, "evaluate", {"satisfaction": "satisfied", "resolved": True})
    assert case_no in following()
    api.step("disp-a", ticket, "close")
    assert case_no not in following()  # closed: it went to the history
    history = _text(api.client.get("/desk/history", params={"case": case_no[-5:]}).text)
    assert case_no in history and "已办结" in history and "协办" in history
    assert case_no not in _text(api.client.get("/desk/history", params={"status": "cancelled"}).text)


# -- refusals in Chinese --------------------------------------------------------------------------------

def test_a_refused_step_on_the_desk_names_the_case_and_the_department_in_chinese(api: Api) -> None:
    ticket = api.report("sup-a")
    api.step("disp-a", ticket, "accept")
    api.step("disp-a", ticket, "dispatch", {"lead": "chengguan", "cooperating": ["huanwei"]})
    case_no = api.get("boss", f"/api/tickets/{ticket}").json()["case_no"]
    csrf = _sign_in(api, "desk-hw")
    api.step("desk-hw", ticket, "acknowledge", {"department": "huanwei"})
    answer = api.client.post(f"/desk/{ticket}/handle", data={"result": "已处理"}, headers={"X-CSRF-Token": csrf} | FORM)
    assert answer.status_code == 200
    said = re.search(r'<p class="error" role="alert"[^>]*>([^<]+)</p>', answer.text).group(1)  # type: ignore[union-attr]
    assert said == f"{case_no} 只有主办部门可以处置", said  # not "only the lead department gives …"


def test_the_api_speaks_chinese_when_asked_and_keeps_its_code(api: Api) -> None:
    ticket = api.report("sup-a")
    english = api.client.post(f"/api/tickets/{ticket}/close", headers=api.headers("disp-a"), json={})
    chinese = api.client.post(f"/api/tickets/{ticket}/close", headers=api.headers("disp-a", **{"Accept-Language": "zh-CN,zh;q=0.9"}), json={})
    assert english.status_code == chinese.status_code == 409
    assert english.json()["code"] == chinese.json()["code"]
    assert chinese.json()["title"] == "与工单当前状态冲突"
    assert re.search(r"[\u4e00-\u9fff]", chinese.json()["detail"]) and not re.search(r"[A-Za-z]{3,}", chinese.json()["detail"])
    assert re.search(r"[A-Za-z]{3,}", english.json()["detail"])
    invalid = api.client.post("/api/tickets", headers=api.headers("sup-a", **{"Accept-Language": "zh"}),
                              json={"grid": "cj-shuiku-g01", "category": "city_appearance", "description": 5})
    assert invalid.status_code == 422 and invalid.json()["detail"] == "描述：填写有误，请检查后重试"


def test_a_locked_account_is_told_in_local_minutes_and_only_to_a_correct_password(api: Api) -> None:
    accounts.set_password(api.runtime, accounts.local_operator("op"), "desk-cg", "page password 1")

    def said(password: str, name: str = "desk-cg") -> str:
        page = page_sign_in(api.client, name, password).text
        return re.search(r'class="error"[^>]*>([^<]+)<', page).group(1)  # type: ignore[union-attr]

    for _ in range(5):
        assert said("wrong") == "用户名或密码不正确，或登录已过期：请重新登录"
    # locked now: a wrong password is not told so (nor is an unknown name), the right one is
    assert said("wrong") == said("wrong", name="nobody-here") == "用户名或密码不正确，或登录已过期：请重新登录"
    told = said("page password 1")
    assert told.startswith("登录失败次数过多") and re.search(r"请于 \d\d:\d\d 后再试$", told), told
    assert (api.clock.now() + timedelta(minutes=15)).strftime("%H:%M") in told


# -- the live pages' streams ----------------------------------------------------------------------------

def test_a_stream_tells_each_viewer_only_of_the_tickets_it_may_see(api: Api) -> None:
    from dispatch.domain.identity import Identity
    from dispatch.service.access import sees_change
    from dispatch.web.live import Hub

    hub = Hub(api.runtime, embedded=True)
    hub.check()  # where the read models stand now
    mine = api.report("sup-a")
    elsewhere = api.report("sup-b", grid="xq-baihe-g01")
    move = hub.check()
    assert move is not None and {c["ticket_id"] for c in move.changes or ()} == {mine, elsewhere}
    disp_a = Identity(name="disp-a", role="dispatcher", scope_kind="street", scope=("caojing",))
    desk_hw = Identity(name="desk-hw", role="department", scope_kind="department", scope=("huanwei",))
    sup_a = Identity(name="sup-a", role="supervisor", scope_kind="grid", scope=("cj-shuiku-g01",))
    seen = {who.name: {c["ticket_id"] for c in move.changes or () if sees_change(who, c)} for who in (disp_a, desk_hw, sup_a)}
    assert seen == {"disp-a": {mine}, "desk-hw": set(), "sup-a": {mine}}
    api.step("disp-a", mine, "accept")
    api.step("disp-a", mine, "dispatch", {"lead": "chengguan", "cooperating": ["huanwei"]})
    move = hub.check()
    assert move is not None
    assert [c["ticket_id"] for c in move.changes or () if sees_change(desk_hw, c)] == [mine]  # its call now
    assert hub.check() is None  # nothing moved since
    api.step("disp-a", mine, "cancel", {"reason": "重复上报"})
    move = hub.check()
    assert move is not None and [c["ticket_id"] for c in move.changes or ()] == [mine]  # ended: still told


def test_a_photo_too_large_for_the_phone_form_is_refused_in_the_form_never_as_json(api: Api) -> None:
    csrf = _sign_in(api, "sup-a")
    big = b"\xff" * (11 * 1024 * 1024)
    answer = api.client.post("/report", data={"csrf": csrf, "description": "路灯不亮", "category": "city_appearance"},
                             files={"photo": ("huge.jpg", big, "image/jpeg")},
                             headers={"Accept": "text/html,application/xhtml+xml"}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/report?refused=too_large"
    page = api.client.get(answer.headers["location"]).text
    said = re.search(r'<p class="error" role="alert">([^<]+)</p>', page).group(1)  # type: ignore[union-attr]
    assert said == "提交的内容过大（超过 10 MB）：请缩小照片或删减文字后重试"
    # a program (no HTML asked for) still gets the problem, in Chinese when it asks
    program = api.client.post("/report", content=big, headers={"Content-Type": "application/octet-stream",
                                                                "Accept-Language": "zh"})
    assert program.status_code == 413 and program.json()["code"] == "too_large"
    assert program.json()["title"] == "提交的内容过大"


def test_a_browser_never_gets_a_json_page_a_stale_form_or_an_ended_session_is_said_in_chinese(api: Api) -> None:
    _sign_in(api, "sup-a")
    html = {"Accept": "text/html,application/xhtml+xml"}
    stale = api.client.post("/report", data={"csrf": "0" * 64, "description": "路灯不亮"}, headers=html)
    assert stale.status_code == 403 and stale.headers["content-type"].startswith("text/html")
    said = re.search(r'<p class="card error" role="alert">([^<]+)</p>', stale.text).group(1)  # type: ignore[union-attr]
    assert said == "页面已过期：请刷新页面后重试"
    api.client.cookies.clear()
    ended = api.client.post("/report", data={"description": "路灯不亮"}, headers=html, follow_redirects=False)
    assert ended.status_code == 303 and ended.headers["location"] == "/login"
    # a program asking the same gets its problem, as before
    program = api.client.post("/report", data={"description": "路灯不亮"}, headers={"Accept": "application/json"})
    assert program.status_code == 401 and program.json()["code"] == "unauthenticated"
