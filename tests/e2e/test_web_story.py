"""`dispatch web` as an operator starts it: a database, the first admin from the CLI, a desk
user and its token, then the real server process answering curl-like calls."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx

from tests.e2e.cli import Cli


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_operator_starts_the_web_and_people_sign_in(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    cli("init")
    added = subprocess.run([sys.executable, "-m", "dispatch", "users", "add", "boss", "--role", "admin",
                            "--password-stdin"], input="correct horse battery\n", cwd=tmp_path, env=cli.env,
                           capture_output=True, text=True, timeout=60)
    assert added.returncode == 0, added.stderr
    cli("users", "add", "cg", "--role", "department", "--scope", "城管")
    token = cli("--json", "users", "token", "cg").json()["token"]

    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "dispatch", "web", "--port", str(port)], cwd=tmp_path,
                              env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "dispatch web did not start"
            time.sleep(0.2)
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
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
    assert "Traceback" not in err, err
    assert f"http://127.0.0.1:{port}/api/" in err
    # the CLI sees what the web recorded, with the desk as the actor
    history = cli("--json", "history", ticket).json()["events"]
    assert history[-1]["actor"]["id"] == "cg"
