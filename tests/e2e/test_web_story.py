"""`dispatch web` as an operator starts it: a database, the first admin from the CLI, a desk
user and its token, then the real server process answering curl-like calls."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx2 as httpx

from tests.e2e.cli import Cli
from tests.e2e.web import web_process


def test_an_operator_starts_the_web_and_people_sign_in(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    cli("init")
    added = subprocess.run([sys.executable, "-m", "dispatch", "users", "add", "boss", "--role", "admin",
                            "--password-stdin"], input="correct horse battery\n", cwd=tmp_path, env=cli.env,
                           capture_output=True, text=True, timeout=60)
    assert added.returncode == 0, added.stderr
    cli("users", "add", "cg", "--role", "department", "--scope", "城管")
    token = cli("--json", "users", "token", "cg").json()["token"]

    with web_process(cwd=tmp_path, env=cli.env) as web:
        base = web.base
        session = httpx.post(f"{base}/api/session", json={"name": "boss", "password": "correct horse battery"})
        boss = {"Authorization": f"Bearer {session.json()['token']}"}
        r = httpx.post(f"{base}/api/tickets", headers=boss, json={"grid": "cj-shuiku-g01",
                                                                  "category": "city_appearance",
                                                                  "description": "路灯不亮"})
        assert r.status_code == 201, r.text
        ticket = r.json()["ticket_id"]
        for step in ("accept", "dispatch"):
            assert httpx.post(f"{base}/api/tickets/{ticket}/{step}", headers=boss, json={}).status_code == 200
        desk = {"Authorization": f"Bearer {token}"}
        inbox = httpx.get(f"{base}/api/inbox", headers=desk).json()["calls"]
        assert [c["ticket_id"] for c in inbox] == [ticket]
        ack = httpx.post(f"{base}/api/tickets/{ticket}/acknowledge", headers=desk, json={})
        assert ack.json()["version"] == 4
        assert httpx.get(f"{base}/api/openapi.json").json()["info"]["title"] == "dispatch"
        assert httpx.get(f"{base}/api/tickets").status_code == 401
    assert f"{web.base}/api/" in web.err
    # the CLI sees what the web recorded, with the desk as the actor
    history = cli("--json", "history", ticket).json()["events"]
    assert history[-1]["actor"]["id"] == "cg"
