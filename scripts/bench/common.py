"""What every benchmark shares: the result row, the machine, servers, and event stores
filled with simulated tickets."""

from __future__ import annotations

import math
import os
import platform
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from dispatch.aggregates import TERMINAL, Ticket  # noqa: E402
from dispatch.bootstrap import Runtime  # noqa: E402
from dispatch.domain.errors import DispatchError, TicketNotFound  # noqa: E402
from dispatch.service.handlers import HANDLERS  # noqa: E402
from dispatch.service.simulation import simulate  # noqa: E402

__all__ = ["REPO", "START", "Result", "fill_store", "stop_processes", "fresh_pg", "drop_pg", "kafka_bootstrap", "load", "machine",
           "run_python", "unique_prefix"]

START = datetime(2025, 9, 22, tzinfo=ZoneInfo("Asia/Shanghai"))
PG_BASE = os.environ.get("BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:55432/dispatch")


@dataclass
class Result:
    """One benchmark figure beside the floor measured in the same run."""

    name: str
    figure: str
    unit: str
    value: float | None
    floor_label: str
    floor: float | None
    ratio: float | None  # value / floor
    target: str
    passed: bool | None
    details: dict[str, Any] = field(default_factory=dict)
    notes: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "ram_gib": ram, "cpu": cpu, "python": platform.python_version(),
            "platform": platform.platform(), "load_average_at_start": load()}


# --- servers ----------------------------------------------------------------------------------

def fresh_pg(prefix: str) -> str:
    from tests.integration.servers import fresh_postgres_database

    os.environ.setdefault("DISPATCH_TEST_POSTGRES_URL", PG_BASE)
    return fresh_postgres_database(prefix)


def drop_pg(url: str) -> None:
    from tests.integration.servers import drop_postgres_database

    drop_postgres_database(url)


def kafka_bootstrap() -> str:
    return os.environ.get("BENCH_KAFKA", "127.0.0.1:19092")


def unique_prefix(name: str) -> str:
    return f"bench-{name}-{uuid.uuid4().hex[:8]}."


def run_python(code: str, *args: str, timeout: float = 1800) -> str:
    """Run ``python -c code args`` in a fresh process from the repository; return stdout."""
    p = subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, capture_output=True, text=True,
                       timeout=timeout, env=os.environ | {"PYTHONPATH": str(REPO)})
    if p.returncode != 0:
        raise RuntimeError(f"subprocess failed ({p.returncode}): {p.stderr[-2000:]}")
    return p.stdout


# --- event stores full of simulated tickets --------------------------------------------------

class _Memory:
    """A unit of work that keeps open tickets in memory (the bulk filler never re-reads the store)."""

    def __init__(self, runtime: Runtime):
        self.reference, self.sla, self.vault = runtime.reference, runtime.app.sla, runtime.app.vault
        self.tickets: dict[UUID, Ticket] = {}

    def case_number(self, street: str, reported_at: Any) -> str | None:
        return None  # simulated tickets go unnumbered (numbers are the live engine's, drawn per batch)

    def get(self, ticket_id: UUID) -> Ticket:
        try:
            return self.tickets[ticket_id]
        except KeyError:
            raise TicketNotFound(ticket_id) from None

    def exists(self, ticket_id: UUID) -> bool:
        return ticket_id in self.tickets

    def add(self, ticket: Ticket) -> None:
        self.tickets[ticket.id] = ticket


def fill_store(runtime: Runtime, events: int, *, seed: int = 1, per_day: float = 1000, chunk: int = 5000) -> int:
    """Record about ``events`` events of simulated tickets (the real handlers and aggregates,
    ``app.record`` in chunks; no projections). Returns the number recorded."""
    uow, touched, n, refused = _Memory(runtime), {}, 0, 0
    days = math.ceil(events / (per_day * 8.5)) + 3
    began = time.perf_counter()
    for _, command in simulate(runtime.reference, "xinqi", days, per_day, seed, START):
        try:
            ticket = HANDLERS[type(command)](uow, command)
        except DispatchError:
            refused += 1
            continue
        touched[ticket.id] = ticket
        n += 1
        if n % chunk == 0 or n >= events:
            runtime.app.record(touched.values())
            for t in touched.values():
                if t.status in TERMINAL:
                    uow.tickets.pop(t.id, None)
            touched.clear()
            if n >= events:
                break
    if touched:
        runtime.app.record(touched.values())
    if refused:
        raise RuntimeError(f"{refused} simulated commands were refused while filling the store")
    print(f"  filled {n} events in {time.perf_counter() - began:.1f}s", file=sys.stderr)
    return n


def end_of(days: int) -> datetime:
    return START + timedelta(days=days)


def stop_processes(procs: list[subprocess.Popen[Any]], timeout: float = 60) -> None:
    """SIGTERM every process, then wait for each (SIGKILL after ``timeout``)."""
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
