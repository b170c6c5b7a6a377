"""What the browser tests share: the browser, a real ``dispatch web`` process, page checks."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dispatch.bootstrap import bootstrap
from dispatch.domain import commands as c
from dispatch.service import accounts
from dispatch.service.actions import act
from tests.e2e.web import web_process

# screenshots go to a build folder (a test run changes no tracked file); scripts/screenshots copies them
# into docs/screenshots for the README
SHOTS = Path(os.environ.get("DISPATCH_SCREENSHOTS") or Path(__file__).resolve().parents[2] / "build" / "screenshots")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ENGLISH = re.compile(r"\b(waiting|to_handle|lead|cooperating|dispatched|acknowledged|in_progress|reported|accepted|"
                     r"handled|evaluated|closed|city_appearance|chengguan|huanwei|calendar|working|satisfied)\b")


def chromium() -> str:
    path = os.environ.get("DISPATCH_TEST_CHROMIUM") or shutil.which("chromium")
    assert path, "no Chromium: run scripts/chromium-local (scripts/test does)"
    return path


@pytest.fixture
def site(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A real ``dispatch web`` on a fresh database: users cg, hw (desks), sup (supervisor), disp
    (dispatcher), and one ticket dispatched to 城管 with 环卫 and 综合执法 cooperating."""
    db = str(tmp_path / "desk.db")
    runtime = bootstrap(db)
    op = accounts.local_operator("op")
    accounts.add(runtime, op, name="cg", role="department", scope="城管", password="desk password 1")
    accounts.add(runtime, op, name="hw", role="department", scope="环卫", password="desk password 2")
    accounts.add(runtime, op, name="boss", role="admin", scope=None, password="admin password 1")
    accounts.add(runtime, op, name="sup", role="supervisor", scope="community:cj-shuiku", password="field password 1")
    accounts.add(runtime, op, name="disp", role="dispatcher", scope="street:caojing", password="centre password 1")
    ticket = act(runtime, c.Report, op, grid="cj-shuiku-g01", category="市容环卫", description="路边垃圾堆积",
                 channel="patrol").ticket_id
    act(runtime, c.Accept, op, ticket_id=str(ticket))
    act(runtime, c.Dispatch, op, ticket_id=str(ticket))
    boundaries = runtime.reference.boundaries
    runtime.close()
    with web_process("--db", db) as web:
        yield {"base": web.base, "ticket": str(ticket), "boundaries": boundaries, "db": db}


def visible(page: Any) -> str:
    return str(page.inner_text("body"))


def clean(page: Any) -> None:
    text = visible(page)
    assert not UUID.search(text), text
    assert not ENGLISH.search(text), ENGLISH.search(text)




def sign_in(page: Any, base: str, name: str, password: str) -> None:
    """Sign in through the page's form, as a person does."""
    page.goto(f"{base}/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
