"""A real ``dispatch web`` process for the end-to-end and browser tests."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2 as httpx

from tests.waiting import wait_for

__all__ = ["WebProcess", "web_process"]


class WebProcess:
    def __init__(self, base: str, pid: int):
        self.base, self.pid = base, pid
        self.err = ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def web_process(*args: str, cwd: Path | None = None, env: dict[str, Any] | None = None,
                port: int | None = None, web_args: tuple[str, ...] = ()) -> Iterator[WebProcess]:
    """``python -m dispatch <args> web --port P <web_args>`` until it answers /healthz; stopped
    (SIGTERM) on the way out, and its stderr checked for a traceback. ``port``: a given one (a restart)."""
    port = port or _free_port()
    server = subprocess.Popen([sys.executable, "-m", "dispatch", *args, "web", "--port", str(port), *web_args],
                              cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    web = WebProcess(f"http://127.0.0.1:{port}", server.pid)
    def answering() -> bool:
        if server.poll() is not None:
            raise AssertionError(f"dispatch web exited: {server.communicate(timeout=5)[1]}")
        try:
            return httpx.get(f"{web.base}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(answering, timeout=60, every=0.2, what="dispatch web to answer")
        yield web
    finally:
        server.terminate()
        _, web.err = server.communicate(timeout=30)
        assert "Traceback" not in web.err, web.err
