"""A dispatch web app on a fresh embedded database, with one user per role (and a few out of
scope), their tokens, and a clock the test moves: what the API tests share."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient

from dispatch.bootstrap import Runtime, bootstrap
from dispatch.domain.clock import SimulatedClock
from dispatch.service import accounts
from dispatch.web import create_app
from dispatch.web.guard import Limits

START = datetime(2026, 11, 20, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))

# name: (role, scope). "A" is street caojing (district jinshan); "B" is street xinqi (district beilun).
USERS: dict[str, tuple[str, str | None]] = {
    "boss": ("admin", None),
    "sup-a": ("supervisor", "grid:cj-shuiku-g01"),
    "sup-b": ("supervisor", "community:xq-baihe"),
    "hot-a": ("hotline", "district:jinshan"),
    "hot-b": ("hotline", "district:beilun"),
    "disp-a": ("dispatcher", "street:caojing"),
    "disp-b": ("dispatcher", "street:xinqi"),
    "desk-cg": ("department", "department:chengguan"),
    "desk-hw": ("department", "department:huanwei"),
    "desk-jj": ("department", "department:jiaojing"),
    "lead-a": ("leader", "street:caojing"),
    "lead-b": ("leader", "district:beilun"),
    "ana": ("analyst", None),
}
GRID_A, GRID_B = "cj-shuiku-g01", "xq-baihe-g01"


@dataclass
class Api:
    runtime: Runtime
    client: TestClient
    clock: SimulatedClock
    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, who: str | None, **extra: str) -> dict[str, str]:
        return ({"Authorization": f"Bearer {self.tokens[who]}"} if who else {}) | extra

    def get(self, who: str | None, path: str, **params: Any) -> Any:
        return self.client.get(path, headers=self.headers(who), params=params)

    def post(self, who: str | None, path: str, body: dict[str, Any] | None = None, **headers: str) -> Any:
        self.clock.advance(timedelta(minutes=1))
        return self.client.post(path, headers=self.headers(who, **headers), json=body if body is not None else {})

    def report(self, who: str = "sup-a", grid: str = GRID_A, **body: Any) -> str:
        r = self.post(who, "/api/tickets", {"grid": grid, "category": "city_appearance",
                                            "description": "垃圾堆放", **body})
        assert r.status_code == 201, r.text
        return str(r.json()["ticket_id"])

    def step(self, who: str, ticket: str, step: str, body: dict[str, Any] | None = None, status: int = 200) -> Any:
        r = self.post(who, f"/api/tickets/{ticket}/{step}", body or {})
        assert r.status_code == status, r.text
        return r.json()

    def version(self, ticket: str) -> int:
        return int(self.get("boss", f"/api/tickets/{ticket}").json()["version"])


def login_form(client: Any, base: str = "") -> dict[str, str]:
    """What a browser's sign-in form carries besides the name and password: its CSRF token (the
    form page sets the cookie it comes from)."""
    import re

    page = client.get(f"{base}/login").text
    found = re.search(r'name="login_csrf" value="([0-9a-f]{64})"', page)
    assert found, page[:500]
    return {"login_csrf": found.group(1)}


def page_sign_in(client: Any, name: str, password: str, base: str = "", **options: Any) -> Any:
    """Sign in as the page does (GET the form, POST it with its token)."""
    return client.post(f"{base}/login", data={"name": name, "password": password, **login_form(client, base)},
                       **options)


def sign_in_page(api: Api, name: str) -> str:
    """Sign ``name`` in on the pages (a page password set first); returns the CSRF token the
    pages' htmx requests carry."""
    import re

    accounts.set_password(api.runtime, accounts.local_operator("op"), name, "page password 1")
    api.client.cookies.clear()
    r = page_sign_in(api.client, name, "page password 1", follow_redirects=False)
    assert r.status_code == 303
    page = api.client.get("/report").text  # any page carries the CSRF token for htmx
    found = re.search(r'"X-CSRF-Token": "([0-9a-f]{64})"', page)
    assert found
    return found.group(1)


def make_api(tmp: Path, limits: Limits | None = None, **options: Any) -> Api:
    """``options`` go to ``create_app`` (the background thread is off unless asked for)."""
    clock = SimulatedClock(START)
    runtime = bootstrap(str(tmp / "web.db"), clock=clock)
    operator = accounts.local_operator("test-operator")
    app = create_app(runtime, limits=limits, **({"background": False} | options))
    api = Api(runtime, TestClient(app), clock)
    for name, (role, scope) in USERS.items():
        accounts.add(runtime, operator, name=name, role=role, scope=scope,
                     password="correct horse battery" if name == "boss" else None)
        api.tokens[name] = accounts.issue_token(runtime, operator, name).text
    return api
