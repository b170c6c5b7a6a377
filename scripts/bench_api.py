#!/usr/bin/env python
"""The HTTP door's cost: `dispatch web` (embedded, SQLite) answering one client in sequence —
report writes, ticket reads and a desk's inbox — each beside a floor measured in the same run:
`/healthz`, the same server answering with no database work.

    python scripts/bench_api.py [--n 300]

Prints a table (milliseconds, p50 and p95). The write rate limit is lifted for the run. Not a
test: nothing here fails the build."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2 as httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.web import web_process  # noqa: E402


def _times(call: object, n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        call()  # type: ignore[operator]
        out.append((time.perf_counter() - started) * 1000)
    return out


def _row(name: str, values: list[float], floor: list[float]) -> str:
    p50, p95 = statistics.median(values), statistics.quantiles(values, n=20)[18]
    f50 = statistics.median(floor)
    return f"| {name} | {p50:.1f} | {p95:.1f} | {f50:.1f} | {p50 / f50:.1f} |"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=300)
    n = parser.parse_args().n
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "bench.db")
        run = [sys.executable, "-m", "dispatch", "--db", db]
        subprocess.run([*run, "init"], check=True, capture_output=True)
        subprocess.run([*run, "users", "add", "hot", "--role", "hotline", "--scope", "district:jinshan"], check=True,
                       capture_output=True)
        subprocess.run([*run, "users", "add", "cg", "--role", "department", "--scope", "城管"], check=True,
                       capture_output=True)
        hot = subprocess.run([*run, "--json", "users", "token", "hot"], check=True, capture_output=True, text=True)
        cg = subprocess.run([*run, "--json", "users", "token", "cg"], check=True, capture_output=True, text=True)
        import json

        H = {"Authorization": "Bearer " + json.loads(hot.stdout)["token"]}
        D = {"Authorization": "Bearer " + json.loads(cg.stdout)["token"]}
        import os

        unlimited = {**os.environ, "DISPATCH_WEB_WRITES_PER_MINUTE": "1000000", "DISPATCH_WEB_WRITE_BURST": "1000000"}
        with web_process("--db", db, env=unlimited) as web, httpx.Client(base_url=web.base) as client:
            floor = _times(lambda: client.get("/healthz"), n)
            made: list[str] = []

            def report() -> None:
                r = client.post("/api/tickets", headers=H, json={"grid": "cj-shuiku-g01", "category": "city_appearance",
                                                                  "description": "垃圾"})
                made.append(r.json()["ticket_id"])

            writes = _times(report, n)
            reads = _times(lambda: client.get(f"/api/tickets/{made[len(made) // 2]}", headers=H), n)
            lists = _times(lambda: client.get("/api/tickets", headers=H, params={"limit": 50}), n)
            inbox = _times(lambda: client.get("/api/inbox", headers=D), n)
    print("| request | p50 ms | p95 ms | floor p50 ms (/healthz) | ratio |")
    print("|---|---|---|---|---|")
    for name, values in (("POST /api/tickets (a report)", writes), ("GET /api/tickets/{id}", reads),
                         ("GET /api/tickets?limit=50", lists), ("GET /api/inbox (a desk)", inbox)):
        print(_row(name, values, floor))


if __name__ == "__main__":
    main()
