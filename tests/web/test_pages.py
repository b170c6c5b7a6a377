"""The pages' sessions, without a browser: a session expires after 8 hours and is sent to
sign-in; a form without its CSRF token changes nothing; a page is in Chinese for its user's role."""

from __future__ import annotations

import re
from datetime import timedelta

from dispatch.service import accounts
from tests.web.support import Api, page_sign_in


def _sign_in(api: Api, name: str) -> None:
    accounts.set_password(api.runtime, accounts.local_operator("op"), name, "page password 1")
    r = page_sign_in(api.client, name, "page password 1", follow_redirects=False)
    assert r.status_code == 303 and "httponly" in r.headers["set-cookie"].lower()
    assert "samesite=strict" in r.headers["set-cookie"].lower()


def test_a_session_expires_after_eight_hours(api: Api) -> None:
    _sign_in(api, "desk-cg")
    assert api.client.get("/desk", follow_redirects=False).status_code == 200
    api.clock.advance(timedelta(hours=8, minutes=1))
    r = api.client.get("/desk", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"


def test_a_form_without_its_csrf_token_changes_nothing(api: Api) -> None:
    ticket = api.report()
    api.step("disp-a", ticket, "accept")
    api.step("disp-a", ticket, "dispatch")
    _sign_in(api, "desk-cg")
    page = api.client.get("/desk").text
    assert "市容环卫" in page and "待报到" in page
    assert api.client.post(f"/desk/{ticket}/acknowledge").status_code == 403
    assert api.client.post(f"/desk/{ticket}/acknowledge", headers={"X-CSRF-Token": "0" * 64}).status_code == 403
    assert api.version(ticket) == 3
    token = re.search(r'"X-CSRF-Token": "([0-9a-f]{64})"', page).group(1)  # type: ignore[union-attr]
    assert api.client.post(f"/desk/{ticket}/acknowledge", headers={"X-CSRF-Token": token}).status_code == 200
    assert api.version(ticket) == 4


def test_each_role_lands_on_its_own_page(api: Api) -> None:
    for name, home in (("desk-cg", "/desk"), ("disp-a", "/console"), ("sup-a", "/report"), ("hot-a", "/report")):
        _sign_in(api, name)
        assert api.client.get("/", follow_redirects=False).headers["location"] == home
    _sign_in(api, "desk-cg")
    assert api.client.get("/console").status_code == 403  # a desk is not the grid centre


def test_the_field_report_takes_a_photo_and_refuses_what_is_not_one(api: Api) -> None:
    import io

    from PIL import Image

    _sign_in(api, "sup-a")
    page = api.client.get("/report").text
    csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', page).group(1)  # type: ignore[union-attr]
    form = {"csrf": csrf, "key": "form-1", "category": "city_appearance", "description": "井盖缺失",
            "grid": "cj-shuiku-g01", "channel": "patrol"}
    bad = api.client.post("/report", data=form, files={"photo": ("x.jpg", b"%PDF-1.4", "image/jpeg")})
    assert bad.status_code == 200 and "photo" in bad.text and 'role="alert"' in bad.text
    picture = io.BytesIO()
    Image.new("RGB", (64, 48), (1, 2, 3)).save(picture, format="PNG")
    for _ in range(2):  # a double tap: one ticket
        made = api.client.post("/report", data=form, files={"photo": ("p.png", picture.getvalue(), "image/png")},
                               follow_redirects=False)
        assert made.status_code == 303 and made.headers["location"].startswith("/report?made=")
    ticket = made.headers["location"].split("=", 1)[1]
    shown = api.get("boss", f"/api/tickets/{ticket}").json()
    assert len(shown["media"]) == 1 and shown["media"][0].startswith("file:")
    assert len(api.get("boss", "/api/tickets", limit=100).json()["tickets"]) == 1
    photo = api.client.get(f"/tickets/{ticket}/media/{shown['media'][0][5:]}")
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"


def _csrf(page: str) -> str:
    return re.search(r'"X-CSRF-Token": "([0-9a-f]{64})"', page).group(1)  # type: ignore[union-attr]


def test_the_field_report_shows_the_new_case_number_and_my_reports_with_their_status(api: Api) -> None:
    api.report("sup-b", "xq-baihe-g01")  # somebody else's, elsewhere
    _sign_in(api, "sup-a")
    page = api.client.get("/report").text
    csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', page).group(1)  # type: ignore[union-attr]
    made = api.client.post("/report", data={"csrf": csrf, "key": "k-1", "category": "city_appearance",
                                            "description": "井盖缺失", "grid": "cj-shuiku-g01"},
                           follow_redirects=False)
    ticket = made.headers["location"].split("=", 1)[1]
    case_no = api.runtime.app.get_ticket(__import__("uuid").UUID(ticket)).case_no
    shown = api.client.get(made.headers["location"]).text
    assert f"工单编号 <strong class=\"case\">{case_no}</strong>" in shown
    mine = shown.split('id="mine"', 1)[1].split("</section>", 1)[0]
    assert case_no in mine and "已上报" in mine and mine.count("</li>") == 1
    api.step("disp-a", ticket, "accept")
    mine = api.client.get("/report").text.split('id="mine"', 1)[1].split("</section>", 1)[0]
    assert "已受理" in mine


def test_a_desk_asks_for_an_extension_and_the_console_grants_it(api: Api) -> None:
    ticket = api.report()
    api.step("disp-a", ticket, "accept")
    api.step("disp-a", ticket, "dispatch")
    api.step("desk-cg", ticket, "acknowledge")
    _sign_in(api, "desk-cg")
    desk = api.client.get("/desk").text
    assert "申请延期" in desk
    asked = api.client.post(f"/desk/{ticket}/extension", data={"hours": "4", "reason": "等待配件"},
                            headers={"X-CSRF-Token": _csrf(desk)})
    assert asked.status_code == 200 and "等待网格中心审批" in asked.text
    before = api.get("boss", f"/api/tickets/{ticket}").json()["handle_due"]
    _sign_in(api, "disp-a")
    console = api.client.get("/console").text
    pending = console.split('id="list-extensions"', 1)[1].split("</section>", 1)[0]
    assert "申请延期 4.0 小时" in pending
    granted = api.client.post(f"/console/{ticket}/extension-approve", headers={"X-CSRF-Token": _csrf(console)})
    assert granted.status_code == 200
    after = api.get("boss", f"/api/tickets/{ticket}").json()
    assert after["handle_due"] > before and after["extension"] is None
    pending = granted.text.split('id="list-extensions"', 1)[1].split("</section>", 1)[0]
    assert "申请延期" not in pending.split("</h2>", 1)[1]


def test_the_console_holds_and_resumes_and_closes_an_unsatisfied_result_only_with_its_reason(api: Api) -> None:
    ticket = api.report()
    for who, step, body in (("disp-a", "accept", {}), ("disp-a", "dispatch", {}), ("desk-cg", "acknowledge", {}),
                            ("desk-cg", "handle", {"result": "ok"}), ("disp-a", "feedback", {"message": "ok"}),
                            ("disp-a", "evaluate", {"satisfaction": "unsatisfied", "resolved": False})):
        assert api.step(who, ticket, step, body)
    _sign_in(api, "disp-a")
    console = api.client.get("/console").text
    assert "应返工" in console
    refused = api.client.post(f"/console/{ticket}/close", headers={"X-CSRF-Token": _csrf(console)})
    assert 'role="alert"' in refused.text and api.get("boss", f"/api/tickets/{ticket}").json()["status"] == "evaluated"
    closed = api.client.post(f"/console/{ticket}/close", data={"override": "诉求超出政策范围"},
                             headers={"X-CSRF-Token": _csrf(console)})
    assert closed.status_code == 200
    assert api.get("boss", f"/api/tickets/{ticket}").json()["override"] == "诉求超出政策范围"
    other = api.report()
    api.step("disp-a", other, "accept")
    api.step("disp-a", other, "dispatch")
    held = api.client.post(f"/console/{other}/hold", data={"reason": "等待产权确认"},
                           headers={"X-CSRF-Token": _csrf(console)})
    assert "挂起中" in held.text and "恢复" in held.text
    api.client.post(f"/console/{other}/resume", headers={"X-CSRF-Token": _csrf(console)})
    assert api.get("boss", f"/api/tickets/{other}").json()["held_since"] is None


def test_the_consoles_lists_come_from_one_query_holding_what_a_query_per_status_would(api: Api) -> None:
    """The console's lists (each status's newest 100) are read in one query: the same rows as one
    query per status, with each status's limit kept."""
    from dispatch.domain.identity import Identity
    from dispatch.service import queries

    made = [api.report() for _ in range(7)]
    for ticket in made[:4]:
        api.step("disp-a", ticket, "accept")
    for ticket in made[:2]:
        api.step("disp-a", ticket, "dispatch", {"lead": "chengguan"})
    api.report("sup-b", grid="xq-baihe-g01")  # another street's: not this dispatcher's
    who = Identity(name="disp-a", role="dispatcher", scope_kind="street", scope=("caojing",))
    statuses = ["reported", "accepted", "dispatched", "handled"]
    for per in (1, 2, 100):
        together = queries.tickets(api.runtime, identity=who, statuses=statuses, per_status=per, limit=1000)
        apart = [row for status in statuses
                 for row in queries.tickets(api.runtime, identity=who, status=status, limit=per)]
        assert sorted(together, key=lambda r: r["ticket_id"]) == sorted(apart, key=lambda r: r["ticket_id"])
        assert len(together) == min(per, 3) + min(per, 2) + min(per, 2)
