"""What the browser tests share: the browser, a real ``dispatch web`` process, page checks."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from dispatch import accounts
from dispatch import commands as c
from dispatch.actions import act
from dispatch.bootstrap import bootstrap

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ENGLISH = re.compile(r"\b(waiting|to_handle|lead|cooperating|dispatched|acknowledged|in_progress|reported|accepted|"
                     r"handled|evaluated|closed|city_appearance|chengguan|huanwei|calendar|working|satisfied)\b")


def chromium() -> str:
    path = os.environ.get("DISPATCH_TEST_CHROMIUM") or shutil.which("chromium")
    assert path, "no Chromium: run scripts/chromium-local (scripts/test does)"
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "dispatch", "--db", db, "web", "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert server.poll() is None and time.monotonic() < deadline, "dispatch web did not start"
        time.sleep(0.2)
    try:
        yield {"base": base, "ticket": str(ticket), "boundaries": boundaries}
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
        assert "Traceback" not in err, err


def visible(page: Any) -> str:
    return str(page.inner_text("body"))


def clean(page: Any) -> None:
    text = visible(page)
    assert not UUID.search(text), text
    assert not ENGLISH.search(text), ENGLISH.search(text)


