#!/usr/bin/env python
"""A grid centre's whole staff on one `dispatch web`: a realistic mix of concurrent users, each
figure beside the same server's `/healthz` under the same load (the floor), measured in one run.

    python scripts/bench_api.py [--users 20,50,100] [--seconds 20] [--writers 20]
    python scripts/bench_api.py --postgres URL --workers 1,2 [--users 20] [--writers 20]

The mix, per user (closed loop, no think time, so the server is as busy as it gets):
- desks (40 %): hold their event stream open (`/desk/events`, server-sent events) and read their
  calls (`/api/inbox`) when the stream says something of theirs moved — they poll nothing;
- phones (25 %): report (`POST /api/tickets`) and read back what they made;
- dispatchers (20 %): the newest reported tickets, accept one and dispatch it;
- dashboards (15 %): a street's dashboard (`/api/dashboard`) and the ticket list (`?limit=50`).
A probe asks `/healthz` all along. Reads' p95 are given as a multiple of the probe's p95.

Then the write door alone: `--writers` clients reporting as fast as they can; commands/s of the
2xx answers; afterwards every answered ticket is looked for in the read model caught up from the
store, and `dispatch replay --verify` must be clean.

`--postgres URL` (a PostgreSQL server; `scripts/pg-local url`) runs the same on a fresh database of
that server for each count of `--workers` (`dispatch web --workers N`), one after the other, and
compares each count's throughput (writers' commands/s, the mix's answered requests/s) with one
worker's. Not a test: nothing here fails the build.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx2 as httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.web import web_process  # noqa: E402

DESKS = ["chengguan", "huanwei", "shizheng", "jiaojing", "wuye", "zhifa"]
GRIDS = ["cj-shuiku-g01", "cj-shuiku-g02", "cj-hutang-g01"]
UNLIMITED = {"DISPATCH_WEB_WRITES_PER_MINUTE": "1000000", "DISPATCH_WEB_WRITE_BURST": "1000000",
             "DISPATCH_WEB_SIGNINS_PER_MINUTE": "1000000"}


def _cli(db: list[str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "dispatch", *db, *args], check=True, capture_output=True, text=True)
    return done.stdout


def _setup(db: list[str]) -> dict[str, str]:
    """The staff's users and their tokens (role → token; desks by department)."""
    _cli(db, "init")
    who = {"hot": ("hotline", "district:jinshan"), "disp": ("dispatcher", "district:jinshan"),
           "lead": ("leader", "street:caojing")}
    who |= {f"desk-{d}": ("department", d) for d in DESKS}
    tokens = {}
    for name, (role, scope) in who.items():
        _cli(db, "users", "add", name, "--role", role, "--scope", scope)
        tokens[name] = json.loads(_cli(db, "--json", "users", "token", name))["token"]
    return tokens


class Tally:
    def __init__(self) -> None:
        self.times: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.writes_ok: list[str] = []
        self.statuses: dict[tuple[str, int, str], int] = defaultdict(int)

    async def timed(self, name: str, call: Any) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            response = await call
        except httpx.HTTPError:
            self.errors[name] += 1
            return None
        self.times[name].append((time.perf_counter() - started) * 1000)
        if response.status_code >= 300:
            self.errors[name] += 1
            self.statuses[(name, response.status_code, response.text[:160])] += 1
        return response


def _p(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def _mix(base: str, tokens: dict[str, str], users: int, seconds: float) -> Tally:
    tally = Tally()
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=users * 2 + 10, max_keepalive_connections=users * 2 + 10)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        def bearer(name: str) -> dict[str, str]:
            return {"Authorization": "Bearer " + tokens[name]}

        async def probe() -> None:
            while time.perf_counter() < stop:
                await tally.timed("GET /healthz (floor)", client.get("/healthz"))
                await asyncio.sleep(0.02)

        async def desk(i: int) -> None:
            name = f"desk-{DESKS[i % len(DESKS)]}"
            cookies = {"dispatch_session": tokens[name]}
            moved = asyncio.Event()

            async def listen() -> None:
                try:
                    async with client.stream("GET", "/desk/events", cookies=cookies,
                                             headers={"Accept": "text/event-stream"}, timeout=None) as stream:
                        async for line in stream.aiter_lines():
                            if line.startswith("data:"):
                                moved.set()
                except (httpx.HTTPError, asyncio.CancelledError):
                    pass

            listener = asyncio.create_task(listen())
            await tally.timed("GET /api/inbox (a desk)", client.get("/api/inbox", headers=bearer(name)))
            while time.perf_counter() < stop:
                try:
                    await asyncio.wait_for(moved.wait(), timeout=max(0.01, stop - time.perf_counter()))
                except asyncio.TimeoutError:
                    break
                moved.clear()
                await tally.timed("GET /api/inbox (a desk)", client.get("/api/inbox", headers=bearer(name)))
            listener.cancel()

        async def phone(i: int) -> None:
            while time.perf_counter() < stop:
                r = await tally.timed("POST /api/tickets (report)", client.post(
                    "/api/tickets", headers=bearer("hot"),
                    json={"grid": GRIDS[i % len(GRIDS)], "category": "city_appearance", "description": "垃圾满溢"}))
                if r is not None and r.status_code == 201:
                    tally.writes_ok.append(r.json()["ticket_id"])
                    await tally.timed("GET /api/tickets/{id}", client.get(f"/api/tickets/{r.json()['ticket_id']}",
                                                                          headers=bearer("hot")))

        async def dispatcher(i: int) -> None:
            while time.perf_counter() < stop:
                r = await tally.timed("GET /api/tickets?status=reported", client.get(
                    "/api/tickets", headers=bearer("disp"), params={"status": "reported", "limit": 10}))
                rows = r.json() if r is not None and r.status_code == 200 else []
                rows = rows.get("tickets", rows) if isinstance(rows, dict) else rows
                if not rows:
                    await asyncio.sleep(0.05)
                    continue
                tid = rows[i % len(rows)]["ticket_id"]
                a = await tally.timed("POST accept", client.post(f"/api/tickets/{tid}/accept", headers=bearer("disp"),
                                                                 json={}))
                if a is not None and a.status_code < 300:
                    await tally.timed("POST dispatch", client.post(f"/api/tickets/{tid}/dispatch",
                                                                   headers=bearer("disp"), json={}))

        async def board(i: int) -> None:
            while time.perf_counter() < stop:
                await tally.timed("GET /api/dashboard (a street)", client.get(
                    "/api/dashboard", headers=bearer("lead"), params={"street": "caojing"}))
                await tally.timed("GET /api/tickets?limit=50", client.get("/api/tickets", headers=bearer("lead"),
                                                                          params={"limit": 50}))

        kinds = [desk] * 8 + [phone] * 5 + [dispatcher] * 4 + [board] * 3  # 40/25/20/15 %
        tasks = [asyncio.create_task(kinds[i % len(kinds)](i)) for i in range(users)]
        tasks.append(asyncio.create_task(probe()))
        await asyncio.gather(*tasks, return_exceptions=True)
    return tally


async def _writes(base: str, token: str, writers: int, seconds: float) -> tuple[Tally, float]:
    """``writers`` clients reporting as fast as they are answered, starting 20 ms apart as
    clients do rather than in one burst (on several workers' one socket, a burst of new
    connections all goes to the worker that wakes first, and kept alive stays there)."""
    tally = Tally()
    limits = httpx.Limits(max_connections=writers + 5, max_keepalive_connections=writers + 5)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        stop = time.perf_counter() + seconds

        async def writer(i: int) -> None:
            await asyncio.sleep(i * 0.02)
            n = 0
            while time.perf_counter() < stop:
                n += 1
                r = await tally.timed("POST /api/tickets (report)", client.post(
                    "/api/tickets", headers={"Authorization": f"Bearer {token}", "Idempotency-Key": f"w{i}-{n}"},
                    json={"grid": GRIDS[i % len(GRIDS)], "category": "city_appearance", "description": "占道经营"}))
                if r is not None and r.status_code == 201:
                    tally.writes_ok.append(r.json()["ticket_id"])

        started = time.perf_counter()
        await asyncio.gather(*(writer(i) for i in range(writers)))
        elapsed = time.perf_counter() - started
    return tally, elapsed


def _stored(db: list[str], ids: list[str]) -> int:
    """How many of the answered tickets the store holds (one query of the read model by id)."""
    code = ("import sys, json\nfrom dispatch.bootstrap import bootstrap\nfrom sqlalchemy import text\n"
            "ids = json.load(sys.stdin)\nrt = bootstrap(sys.argv[1] if len(sys.argv) > 1 else None, create=False)\n"
            "from dispatch.projections import catch_up\ncatch_up(rt)\n"
            "with rt.engine.connect() as c:\n"
            "    have = {str(r[0]) for r in c.execute(text('SELECT ticket_id FROM tickets'))}\n"
            "print(sum(1 for i in ids if i in have))")
    args = [sys.executable, "-c", code] + ([db[1]] if db else [])
    done = subprocess.run(args, input=json.dumps(ids), capture_output=True, text=True, check=True)
    return int(done.stdout.strip())


def _table(title: str, tally: Tally, elapsed: float | None = None) -> list[str]:
    floor = tally.times.get("GET /healthz (floor)", [])
    f95 = _p(floor, 95)
    out = [f"**{title}**", "", "| request | n | errors | p50 ms | p95 ms | p95 × /healthz p95 |", "|---|---|---|---|---|---|"]
    for name, values in sorted(tally.times.items()):
        ratio = "—" if name.startswith("GET /healthz") or not name.startswith("GET") else f"{_p(values, 95) / f95:.1f}"
        out.append(f"| {name} | {len(values)} | {tally.errors.get(name, 0)} | {statistics.median(values):.1f} | "
                   f"{_p(values, 95):.1f} | {ratio} |")
    for (name, status, text), n in sorted(tally.statuses.items(), key=lambda kv: -kv[1])[:5]:
        out.append(f"| ↳ {name}: {status} × {n} | {text} |")
    writes = sum(len(v) for k, v in tally.times.items() if k.startswith("POST"))
    if elapsed:
        out.append(f"\nwrites: {len(tally.writes_ok)} answered 2xx in {elapsed:.1f} s = "
                   f"**{len(tally.writes_ok) / elapsed:.0f} commands/s**")
    elif writes:
        out.append(f"\n{writes} writes")
    return out + [""]


def _run(db: list[str], users: list[int], seconds: float, writers: int, workers: int = 1) -> dict[str, Any]:
    tokens = _setup(db)
    result: dict[str, Any] = {}
    with web_process(*db, env={**os.environ, **UNLIMITED}, web_args=("--workers", str(workers))) as web:
        for n in users:
            tally = asyncio.run(_mix(web.base, tokens, n, seconds))
            result[f"mix-{n}"] = tally
        tally, elapsed = asyncio.run(_writes(web.base, tokens["hot"], writers, seconds))
        result["writes"] = (tally, elapsed)
    stored = _stored(db, tally.writes_ok)
    verify = subprocess.run([sys.executable, "-m", "dispatch", *db, "replay", "--verify"], capture_output=True,
                            text=True)
    result["stored"] = (stored, len(tally.writes_ok), verify.returncode, (verify.stdout + verify.stderr).strip()[-300:])
    return result


def _answered(tally: Tally) -> int:
    """Requests answered 2xx in a mix (the /healthz probe left out)."""
    return sum(len(v) for k, v in tally.times.items() if not k.startswith("GET /healthz")) - sum(
        n for k, n in tally.errors.items() if not k.startswith("GET /healthz"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", default="20,50,100")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--writers", type=int, default=20)
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL server: a fresh database of it per worker count")
    parser.add_argument("--workers", default="1", help="worker counts to compare, on PostgreSQL (e.g. 1,2)")
    args = parser.parse_args()
    users = [int(u) for u in args.users.split(",")]
    counts = [int(w) for w in args.workers.split(",")]
    lines, rates = [], {}
    for workers in counts if args.postgres else [1]:
        with tempfile.TemporaryDirectory() as tmp:
            if args.postgres:
                from tests.integration.servers import drop_postgres_database, fresh_postgres_database

                url = fresh_postgres_database("bench_api", server=args.postgres)
                db, where = ["--db", url], f"PostgreSQL, {workers} worker{'s' if workers > 1 else ''}"
            else:
                db, where = ["--db", str(Path(tmp) / "bench.db")], "Embedded (SQLite, one process)"
            try:
                res = _run(db, users, args.seconds, args.writers, workers)
            finally:
                if args.postgres:
                    drop_postgres_database(url)
        for n in users:
            lines += _table(f"{where}, {n} users", res[f"mix-{n}"])
            lines.append(f"mix: {_answered(res[f'mix-{n}']) / args.seconds:.0f} requests/s answered 2xx\n")
        tally, elapsed = res["writes"]
        lines += _table(f"{where}, {args.writers} writers reporting", tally, elapsed)
        stored, answered, rc, text = res["stored"]
        lines.append(f"stored afterwards: {stored} of {answered} answered; replay --verify exit {rc}: {text}\n")
        rates[workers] = (len(tally.writes_ok) / elapsed, [_answered(res[f"mix-{n}"]) / args.seconds for n in users])
    if args.postgres and len(rates) > 1 and 1 in rates:
        one_w, one_mix = rates[1]
        lines += ["| workers | writers' commands/s | × one worker | mix requests/s (" + ", ".join(map(str, users))
                  + " users) | × one worker |", "|---|---|---|---|---|"]
        for workers, (w, mix) in sorted(rates.items()):
            lines.append(f"| {workers} | {w:.0f} | {w / one_w:.2f} | {' · '.join(f'{m:.0f}' for m in mix)} | "
                         f"{' · '.join(f'{m / o:.2f}' for m, o in zip(mix, one_mix))} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
