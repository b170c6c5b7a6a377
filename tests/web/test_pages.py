"""The pages' sessions, without a browser: a session expires after 8 hours and is sent to
sign-in; a form without its CSRF token changes nothing; a page is in Chinese for its user's role."""

from __future__ import annotations

import re
from datetime import timedelta

from dispatch import accounts
from tests.web.support import Api


def _sign_in(api: Api, name: str) -> None:
    accounts.set_password(api.runtime, accounts.local_operator("op"), name, "page password 1")
    r = api.client.post("/login", data={"name": name, "password": "page password 1"}, follow_redirects=False)
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
