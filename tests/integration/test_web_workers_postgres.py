"""``dispatch web --workers 2`` on a real PostgreSQL (and Kafka): two worker processes behind one port
answer as one server. Which worker answers is made certain by pausing the other (SIGSTOP: it
accepts nothing until SIGCONT), so each claim below fails if that state lived in a process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx2 as httpx
import psycopg
import pytest

from tests.e2e.web import WebProcess, web_process
from tests.integration.servers import drop_postgres_database, fresh_postgres_database
from tests.waiting import wait_for

pytestmark = pytest.mark.integration
GRID = "cj-shuiku-g01"


def _cli(url: str, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run([sys.executable, "-m", "dispatch", "--db", url, *args], input=stdin, text=True,
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _workers(web: WebProcess) -> list[int]:
    """The server's worker processes (not uvicorn's supervisor, not multiprocessing's tracker)."""
    children = Path(f"/proc/{web.pid}/task/{web.pid}/children").read_text().split()
    return sorted(int(pid) for pid in children
                  if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes())


@contextmanager
def paused(pid: int) -> Iterator[None]:
    """The worker ``pid`` stopped: every request meanwhile is answered by the other one."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def _sign_in(web: WebProcess, name: str, password: str) -> httpx.Response:
    return httpx.post(f"{web.base}/api/session", json={"name": name, "password": password}, timeout=30)


@contextmanager
def two_workers(prefix: str) -> Iterator[tuple[WebProcess, str, list[int]]]:
    url = fresh_postgres_database(prefix)
    try:
        _cli(url, "init")
        _cli(url, "users", "add", "boss", "--role", "admin", "--password-stdin", stdin="correct horse battery\n")
        _cli(url, "users", "add", "desk", "--role", "dispatcher", "--scope", "street:caojing",
             "--password-stdin", stdin="another long secret\n")
        with web_process("--db", url, web_args=("--workers", "2", "--watchdog-every", "1")) as web:
            workers = wait_for(lambda: len(_workers(web)) == 2 and _workers(web), timeout=60, what="two workers")
            for pid in workers:  # each answers on its own
                with paused(pid):
                    assert httpx.get(f"{web.base}/healthz", timeout=10).status_code == 200
            yield web, url, workers
    finally:
        drop_postgres_database(url)


def test_two_workers_share_sessions_sign_in_failures_and_metrics() -> None:
    with two_workers("workers") as (web, _, (a, b)):
        with paused(a):
            token = _sign_in(web, "desk", "another long secret").json()["token"]
        with paused(b):  # the session made by one worker is known to the other
            listed = httpx.get(f"{web.base}/api/tickets", headers={"Authorization": f"Bearer {token}"}, timeout=30)
            assert listed.status_code == 200, listed.text

        # A guesser spreads tries over the workers: the address's first 10 failures are free, the
        # 11th must wait — counted together, though the worker answering it saw only 4 of them.
        with paused(a):
            assert [_sign_in(web, "boss", f"wrong guess {i}").status_code for i in range(6)] == [401] * 6
        with paused(b):
            assert [_sign_in(web, "boss", f"wrong guess {i}").status_code for i in range(6, 10)] == [401] * 4
            refused = _sign_in(web, "boss", "wrong guess 10")
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1

        # /metrics: both workers' answers, summed (whichever worker is asked)
        with paused(a):
            text = httpx.get(f"{web.base}/metrics", timeout=30).text
        line = next(li for li in text.splitlines()
                    if li.startswith("dispatch_http_requests_total") and 'route="/api/session"' in li and '"401"' in li)
        assert float(line.rsplit(" ", 1)[1]) == 10


def test_a_live_page_on_one_worker_hears_a_report_made_elsewhere() -> None:
    with two_workers("workers-live") as (web, url, (a, b)):
        token = _sign_in(web, "boss", "correct horse battery").json()["token"]
        with httpx.Client(base_url=web.base, cookies={"dispatch_session": token}, timeout=30) as page, \
                ExitStack() as held:
            with paused(b):  # the console's stream: worker a (a pause of a moment: uvicorn replaces a
                stream = held.enter_context(page.stream("GET", "/console/events"))  # worker silent for 5 s)
            lines = stream.iter_lines()
            assert wait_for(lambda: next(lines).startswith("event: ready"), timeout=30, every=0, what="ready")
            # a report made by another process (a phone through the CLI's door): no worker wrote it, so
            # a worker's projector must find it, and worker a's watcher tell its page
            made = _cli(url, "--json", "report", "--grid", GRID, "--category", "市容环卫", "-d", "垃圾堆放")
            ticket = json.loads(made)["ticket_id"]
            data = wait_for(lambda: (line := next(lines)).startswith("data: [") and line, timeout=60, every=0,
                            what="the console's stream to tell of the report")
            assert ticket in data


def test_one_worker_runs_the_watchdog_and_another_takes_over_when_it_dies() -> None:
    with two_workers("workers-jobs") as (web, url, _):
        def holders() -> list[tuple[int, int]]:
            with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
                return conn.execute("SELECT objid, pid FROM pg_locks WHERE locktype = 'advisory' "
                                    "AND classid = 7317002 AND granted AND database = "
                                    "(SELECT oid FROM pg_database WHERE datname = current_database()) "
                                    "ORDER BY objid").fetchall()

        jobs = wait_for(lambda: len(holders()) == 2 and holders(), timeout=60, what="the watchdog and notifier held")
        assert len({job for job, _ in jobs}) == 2  # the watchdog's lock and the notifier's, once each
        holder = next(pid for pid in _workers(web) if _holds(pid, url, jobs))
        # the jobs the killed worker held (each job's lock is its own: the other worker may hold one)
        dead = {pid for job, pid in jobs if _holds(holder, url, [(job, pid)])}
        os.kill(holder, signal.SIGKILL)  # uvicorn starts another worker; the lock goes with the dead one's connection
        moved = wait_for(lambda: len(h := holders()) == 2 and {p for _, p in h}.isdisjoint(dead) and h,
                         timeout=60, what="another worker to take the jobs")
        assert len({job for job, _ in moved}) == 2


def _holds(worker: int, url: str, jobs: list[tuple[int, int]]) -> bool:
    """Whether the database connections holding ``jobs`` belong to the process ``worker``."""
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        ports = {row[0] for row in conn.execute("SELECT client_port FROM pg_stat_activity WHERE pid = ANY(%s)",
                                                 ([pid for _, pid in jobs],)).fetchall()}
    inodes = {line.split()[9] for line in Path(f"/proc/{worker}/net/tcp").read_text().splitlines()[1:]
              if int(line.split()[1].split(":")[1], 16) in ports}
    fds = Path(f"/proc/{worker}/fd")
    return any(os.readlink(fd).strip("socket:[]") in inodes for fd in fds.iterdir() if os.readlink(fd).startswith("socket:"))


def test_the_embedded_sqlite_default_keeps_one_worker(tmp_path: Path) -> None:
    _cli(str(tmp_path / "d.db"), "init")
    done = subprocess.run([sys.executable, "-m", "dispatch", "--db", str(tmp_path / "d.db"), "web", "--workers", "2"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "one process" in done.stderr and "PostgreSQL" in done.stderr and "Traceback" not in done.stderr


def test_two_workers_in_kafka_mode_each_hand_commands_to_the_engine_and_answer_its_outcome(tmp_path: Path) -> None:
    import warnings

    from dispatch.bootstrap import bootstrap
    from dispatch.service import accounts
    from tests.integration.kafka_support import read_topic, stack, threads

    with warnings.catch_warnings():  # kafka-python's import-time DeprecationWarning
        warnings.simplefilter("ignore", DeprecationWarning)
        from consumers.engine import Engine

    with stack(tmp_path, "workers") as s:
        runtime = bootstrap(s.db_url)
        operator = accounts.local_operator("op")
        bearer = {}
        for name, role, scope in (("sup", "supervisor", f"grid:{GRID}"), ("disp", "dispatcher", "street:caojing")):
            accounts.add(runtime, operator, name=name, role=role, scope=scope, password=None)
            bearer[name] = {"Authorization": f"Bearer {accounts.issue_token(runtime, operator, name).text}"}
        kafka = ("--kafka", s.settings.bootstrap, "--topic-prefix", s.settings.prefix)
        with threads(Engine(runtime, s.settings)), web_process("--db", s.db_url, web_args=("--workers", "2", *kafka)) as web:
            a, b = wait_for(lambda: len(_workers(web)) == 2 and _workers(web), timeout=60, what="two workers")
            with paused(a):
                made = httpx.post(f"{web.base}/api/tickets", headers=bearer["sup"], timeout=60,
                                  json={"grid": GRID, "category": "city_appearance", "description": "垃圾堆放"})
            assert made.status_code == 201 and made.json()["version"] == 1, made.text
            with paused(b):
                accepted = httpx.post(f"{web.base}/api/tickets/{made.json()['ticket_id']}/accept", headers=bearer["disp"],
                                      json={}, timeout=60)
            assert accepted.status_code == 200 and accepted.json()["version"] == 2, accepted.text
        assert len(read_topic(s.settings, s.topics.intake)) == 2  # both went through the engine's intake
        runtime.close()
