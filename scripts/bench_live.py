#!/usr/bin/env python
"""The live path of the pages: how long a step takes to reach the pages that follow it.

    scripts/bench_live.py [--streams 200] [--n 200] [--db FILE]

A real ``dispatch web`` process (uvicorn, embedded SQLite, the sample reference data) with
``--streams`` event streams open at once — three in four the grid centre's console (a dispatcher of
the street), one in four a department's desk — while a supervisor reports ``--n`` times through the
API, one report at a time. For each report, on every console stream: the time from sending the
command to the stream's ``changed`` event naming its ticket (the command is applied, the process's
watcher sees the read models move and tells the streams), and, for one console, to its page
fragment holding the new row (``appearance``: the event, then the fragment the page fetches).
Beside them, measured in the same run on the same server: the command's own round trip (the write
alone) and the floor of the live path — a new event stream's first event (the same server, the same
streaming machinery, no change to find). Everything travels over loopback. Prints a markdown table
and writes ``bench-results/live.json``. Not a test; ``scripts/bench_pages.py --live`` runs it too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TARGET_P95_MS = 1000


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _prepare(db: str) -> None:
    from dispatch.bootstrap import bootstrap
    from dispatch.service import accounts

    runtime = bootstrap(db)
    op = accounts.local_operator("bench")
    accounts.add(runtime, op, name="disp", role="dispatcher", scope="street:caojing", password="bench password 1")
    accounts.add(runtime, op, name="cg", role="department", scope="城管", password="bench password 2")
    accounts.add(runtime, op, name="sup", role="supervisor", scope="community:cj-shuiku", password="bench password 3")
    runtime.close()


async def _session(client: Any, base: str, name: str, password: str) -> dict[str, str]:
    import re

    form = re.search(r'name="login_csrf" value="([0-9a-f]{64})"', (await client.get(f"{base}/login")).text)
    assert form
    answer = await client.post(f"{base}/login", data={"name": name, "password": password,
                                                      "login_csrf": form.group(1)}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    value = answer.cookies["dispatch_session"]
    client.cookies.clear()  # each page carries its own session (below), never the client's jar
    return {"Cookie": f"dispatch_session={value}"}


async def _follow(client: Any, url: str, cookies: dict[str, str], seen: dict[str, float], ready: asyncio.Event,
                  opened: list[float]) -> None:
    """One page's event stream: the time each ticket id first arrives in a ``changed`` event."""
    started = time.perf_counter()
    async with client.stream("GET", url, headers=cookies, timeout=None) as answer:
        event = ""
        async for line in answer.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
                if event == "ready" and not ready.is_set():
                    opened.append(time.perf_counter() - started)
                    ready.set()
            elif line.startswith("data: ") and event == "changed":
                now = time.perf_counter()
                for ticket in json.loads(line[6:]) or ():
                    seen.setdefault(ticket, now)


async def _run(base: str, streams: int, n: int) -> dict[str, Any]:
    import httpx2 as httpx

    limits = httpx.Limits(max_connections=streams + 20, max_keepalive_connections=streams + 20)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        disp = await _session(client, base, "disp", "bench password 1")
        desk = await _session(client, base, "cg", "bench password 2")
        token = (await client.post(f"{base}/api/session", json={"name": "sup", "password": "bench password 3"})).json()
        auth = {"Authorization": f"Bearer {token['token']}"}
        consoles = [dict[str, float]() for _ in range(streams - streams // 4)]
        tasks, opened = [], []
        for i in range(streams):
            is_console = i < len(consoles)
            ready = asyncio.Event()
            url, cookies = (f"{base}/console/events", disp) if is_console else (f"{base}/desk/events", desk)
            seen = consoles[i] if is_console else {}
            tasks.append(asyncio.create_task(_follow(client, url, cookies, seen, ready, opened)))
            await asyncio.wait_for(ready.wait(), 30)
        floor = []
        for _ in range(min(n, 100)):  # the floor: a new stream's first event, with all the others open
            ready = asyncio.Event()
            one: list[float] = []
            task = asyncio.create_task(_follow(client, f"{base}/console/events", disp, {}, ready, one))
            await asyncio.wait_for(ready.wait(), 30)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            floor.append(one[0] * 1000)
        sent: dict[str, float] = {}
        writes, appearance = [], []
        for i in range(n):
            t0 = time.perf_counter()
            answer = await client.post(f"{base}/api/tickets", headers=auth, json={
                "grid": "cj-shuiku-g01", "category": "city_appearance", "description": f"测试上报 {i}"})
            assert answer.status_code == 201, answer.text
            writes.append((time.perf_counter() - t0) * 1000)
            ticket = answer.json()["ticket_id"]
            sent[ticket] = t0
            deadline = time.perf_counter() + 30
            while ticket not in consoles[0] and time.perf_counter() < deadline:
                await asyncio.sleep(0.002)
            body = await client.get(f"{base}/console/body", headers=disp)
            assert f'data-key="t-{ticket}"' in body.text
            appearance.append((time.perf_counter() - t0) * 1000)
        deadline = time.perf_counter() + 30
        while any(len(c) < n for c in consoles) and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        delivered = [(c[t] - t0) * 1000 for c in consoles for t, t0 in sent.items() if t in c]
        missing = sum(1 for c in consoles for t in sent if t not in c)
    return {"streams": streams, "commands": n, "deliveries": len(delivered), "missing": missing,
            "event": _stats(delivered), "appearance": _stats(appearance), "write": _stats(writes),
            "floor": _stats(floor)}


def _stats(values: list[float]) -> dict[str, float]:
    return {"p50": _p(values, 0.5), "p95": _p(values, 0.95), "p99": _p(values, 0.99),
            "mean": statistics.fmean(values)} if values else {}


def table(out: dict[str, Any]) -> str:
    lines = [f"{out['streams']} open event streams ({out['streams'] - out['streams'] // 4} consoles, "
             f"{out['streams'] // 4} desks), {out['commands']} reports, {out['deliveries']:,} deliveries "
             f"({out['missing']} missing)", "",
             "| path | p50 ms | p95 ms | p99 ms |", "|---|---|---|---|"]
    for key, name in (("event", "command → changed event on every console stream"),
                      ("appearance", "command → row in one console's fragment"),
                      ("write", "the command alone (its HTTP round trip)"),
                      ("floor", "floor: a new stream's first event (same server)")):
        r = out[key]
        lines.append(f"| {name} | {r['p50']:.0f} | {r['p95']:.0f} | {r['p99']:.0f} |")
    met = out["event"]["p95"] <= TARGET_P95_MS
    lines += ["", f"target p95 ≤ {TARGET_P95_MS} ms for the event: {'met' if met else '**not met**'}"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--db", help="a database file to use (a fresh one by default)")
    args = parser.parse_args()
    db = args.db or str(Path(tempfile.mkdtemp(prefix="bench-live-")) / "live.db")
    if not Path(db).exists():
        _prepare(db)
    port = _free_port()
    env = dict(os.environ, DISPATCH_WEB_WRITES_PER_MINUTE="100000", DISPATCH_WEB_WRITE_BURST="100000",
               DISPATCH_LOG_LEVEL="WARNING")
    server = subprocess.Popen([sys.executable, "-m", "dispatch", "--db", db, "web", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        import httpx2 as httpx

        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit(f"dispatch web did not start: {server.stderr.read() if server.stderr else ''}")
            time.sleep(0.2)
        out = asyncio.run(_run(base, args.streams, args.n))
    finally:
        server.terminate()
        server.wait(timeout=30)
    out["machine"] = {"cpus": os.cpu_count(), "load": os.getloadavg()}
    (REPO / "bench-results").mkdir(exist_ok=True)
    (REPO / "bench-results" / "live.json").write_text(json.dumps(out, indent=1))
    print(table(out))


if __name__ == "__main__":
    main()
