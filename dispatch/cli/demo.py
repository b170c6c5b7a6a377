"""``dispatch demo``: simulate a street for N days through the real engine, then show
the street dashboard and the SLA table beside the simulation's own tally.

Embedded by default (SQLite ``demo.db`` in the working directory, recreated each run);
``--db URL`` or ``DISPATCH_DB`` names another: a new database, or one an earlier demo
made. A real dispatch database, or another tool's, is refused whatever the settings say.
"""

from __future__ import annotations

import os
import shlex
import sys
import time as wallclock
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from dispatch.adapters.config import resolve_db
from dispatch.adapters.database import examine, examine_file
from dispatch.adapters.dberrors import translate_db_errors
from dispatch.bootstrap import Runtime, bootstrap
from dispatch.cli import main
from dispatch.cli.context import Ctx, pass_ctx
from dispatch.cli.oversight import _show_dashboard, _show_sla
from dispatch.domain.clock import SimulatedClock
from dispatch.domain.errors import DispatchError, UnsafeTarget
from dispatch.domain.reference import load_reference
from dispatch.service.simulation import DEFAULT_START, SimulationTally, simulate
from dispatch.service.simulation.runner import run_embedded
from dispatch.service.simulation.summary import agreement, figures

if TYPE_CHECKING:
    from dispatch.adapters.kafka import KafkaSettings

__all__ = ["demo"]

DEMO_DB = "demo.db"


def _open(ctx: Ctx, reference_file: str | None) -> tuple[Runtime, str]:
    """The demo's database: ``--db``, else ``DISPATCH_DB``, else ``./demo.db``. It writes only
    into a new database or an empty one an earlier demo made; the default ``demo.db`` is
    recreated when an earlier demo made it. Never a real one, never another tool's."""
    url = ctx.db_url or os.environ.get("DISPATCH_DB") or DEMO_DB
    db = resolve_db(url)
    where = db.url.database if db.is_sqlite else db.display
    path = db.url.database if db.is_sqlite else None
    if path and os.path.exists(path):
        found = examine_file(path)  # read first, without a byte written: another tool's file stays as it is
        if found.what == "unreadable":
            raise UnsafeTarget(f"{where} is not a database the demo can use ({found.reason}); give another with --db")
        if found.what == "dispatch" and found.kind == "demo" and url == DEMO_DB:
            for suffix in ("", "-wal", "-shm", "-journal"):  # an earlier demo's file: ours to recreate
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        elif found.what != "empty" and not (found.what == "dispatch" and found.kind == "demo"):
            raise UnsafeTarget(f"{where} is not a demo database; the demo writes only into a new database or one an "
                               "earlier demo made (give another with --db)")
    if reference_file:
        load_reference(reference_file)  # validated before anything is created
    runtime = bootstrap(url, create=True, kind="demo", reference_file=reference_file)
    with translate_db_errors(db):
        found = examine(runtime.engine)
        events = runtime.app.recorder.max_notification_id() or 0
    if found.kind != "demo" or events:
        runtime.close()
        why = "it is not a demo database" if found.kind != "demo" else f"it already holds {events} events"
        raise UnsafeTarget(f"{where}: {why}; the demo needs an empty database (a new one, or omit --db for a "
                           "fresh demo.db)")
    if url == DEMO_DB:
        return runtime, f"{DEMO_DB} (recreated for this run; --db to choose another)"
    return runtime, where or url


@contextmanager
def _progress(enabled: bool, start: datetime, end: datetime) -> Iterator[Callable[[datetime], None]]:
    if not enabled:
        yield lambda at: None
        return
    total = (end - start).total_seconds()
    with Progress(TextColumn("simulating"), BarColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("", total=total)
        yield lambda at: bar.update(task, completed=(at - start).total_seconds(),
                                    description=f"day {(at - start).days + 1}/{round(total / 86400)} {at:%Y-%m-%d %H:%M}")


def _show(data: dict[str, Any], elapsed: float) -> None:
    console = Console()
    d, t, e = data["demo"], data["tally"], data["engine"]
    console.print(f"[bold]dispatch demo[/bold]: {d['street_name']} ({d['street']}), {d['days']} simulated days from "
                  f"{d['start'][:10]}, about {d['tickets_per_day']:g} reports a day, seed {d['seed']}")
    console.print(f"database: {d['database']}" + (f"; Kafka {d['kafka']}, topics {d['topic_prefix']}*"
                                                  if d["mode"] == "kafka" else ""))
    channels = ", ".join(f"{k} {v}" for k, v in t["by_channel"].items())
    console.print(f"simulated: {t['reported']} reports ({channels}); {t['first_contact_closures']} closed at first "
                  f"contact; {t['redispatches']} redispatched after a rejection; {t['evaluated']} evaluated, "
                  f"{t['tickets_reopened']} reopened; {t['closed']} closed")
    console.print(f"engine: {e['commands']} commands in {e['batches']} batches, {e['refused']} refused; watchdog "
                  f"{e['watchdog_ticks']} ticks, {e['escalations']} escalations; {elapsed:.1f} s\n")
    _show_dashboard(data["dashboard"])
    _show_sla(data["sla"])
    bad = [a for a in data["agreement"] if not a["agree"]]
    if bad:
        console.print("[bold red]figures that disagree with the simulation:[/bold red] "
                      + ", ".join(f"{a['figure']} {a['dashboard']} (simulated {a['simulation']})" for a in bad))
    else:
        console.print("check: the dashboards agree with the simulation's own tally ("
                      + ", ".join(f"{a['figure']} {a['simulation']}" for a in data["agreement"]) + ")")
    db = DEMO_DB if d["database"].startswith(f"{DEMO_DB} ") else shlex.quote(d["database"])
    console.print(f"next: dispatch --db {db} dashboard --street {d['street']} --as-of {d['end']}")


@main.command()
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 3660), help="Simulated days.")
@click.option("--tickets-per-day", default=40.0, show_default=True, type=click.FloatRange(0, 1e6),
              help="Mean reports a day (fewer on rest days).")
@click.option("--seed", default=1, show_default=True, help="Same seed, same story, same figures.")
@click.option("--street", default="xinqi", show_default=True, help="Street id or name, e.g. xinqi or 漕泾镇.")
@click.option("--start", "start_day", default=DEFAULT_START, show_default=True, metavar="DATE",
              help="First simulated day (local midnight).")
@click.option("--tick-minutes", default=15, show_default=True, type=click.IntRange(1, 1440),
              help="Simulated minutes between watchdog passes.")
@click.option("--kafka", "bootstrap_servers", metavar="BOOTSTRAP",
              help="Run through Kafka (host:port) and the --db database (PostgreSQL).")
@click.option("--topic-prefix", default=None, metavar="PREFIX", help="With --kafka: topic name prefix [default: unique per run].")
@click.option("--reference", "reference_file", type=click.Path(dir_okay=False),
              help="Simulate your own places (a reference file, as for init) [default: the bundled sample].")
@click.option("--web", "serve", is_flag=True,
              help="Then serve the simulated street's big screen in the browser (as of the simulation's end).")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="With --web: the port.")
@click.option("--notify-log", type=click.Path(dir_okay=False, writable=True), metavar="FILE",
              help="Write every notification the story would have sent (whistle calls, reminders, escalations …) "
                   "to FILE, one JSON line each, at its simulated time.")
@pass_ctx
def demo(ctx: Ctx, days: int, tickets_per_day: float, seed: int, street: str, start_day: str, tick_minutes: int,
         bootstrap_servers: str | None, topic_prefix: str | None, reference_file: str | None, serve: bool,
         port: int, notify_log: str | None) -> None:
    """Simulate a street for --days through the engine; show its dashboard and SLA table."""
    try:
        first = date.fromisoformat(start_day)
    except ValueError:
        raise click.UsageError(f"--start {start_day!r} is not a date (YYYY-MM-DD)") from None
    settings = None
    if bootstrap_servers is not None:
        if ctx.db_url is None:
            raise click.UsageError("--kafka needs --db (e.g. --db postgresql://postgres@127.0.0.1:55432/demo)")
        from dispatch.adapters.kafka import KafkaSettings

        settings = KafkaSettings.from_env(bootstrap_servers, topic_prefix or f"demo-{uuid4().hex[:8]}.")
    began = wallclock.perf_counter()
    data = _run(ctx, days, tickets_per_day, seed, street, first, timedelta(minutes=tick_minutes), settings,
                reference_file, notify_log)
    ctx.emit(data, lambda: _show(data, wallclock.perf_counter() - began))
    if any(not a["agree"] for a in data["agreement"]) or data["engine"]["refused"]:
        raise DispatchError("the demo's figures do not agree with the simulation (see above)")
    if serve:
        _serve(ctx, data["demo"], port)


def _serve(ctx: Ctx, demo: dict[str, Any], port: int) -> None:
    """The simulated street's big screen (a display token, no user needed), with the web's clock
    standing at the simulation's end, so "now" on every page is the end of the story."""
    import webbrowser

    import uvicorn

    from dispatch.service import accounts
    from dispatch.web import create_app

    runtime = bootstrap(ctx.db_url or os.environ.get("DISPATCH_DB") or DEMO_DB,
                        clock=SimulatedClock(datetime.fromisoformat(demo["end"])))
    key = accounts.issue_display_token(runtime, accounts.local_operator(), demo["street"], days=1,
                                       label="dispatch demo --web").text
    address = f"http://127.0.0.1:{port}/screen?key={key}"
    click.echo(f"dispatch demo: the big screen of {demo['street_name']} at {address} (Ctrl-C stops)", err=True)
    webbrowser.open(address)
    uvicorn.run(create_app(runtime), host="127.0.0.1", port=port, log_level="warning", server_header=False,
                timeout_graceful_shutdown=2)

def _notifying(runtime: Any, path: str, tick: timedelta, then: Callable[[datetime], None]) -> Callable[[datetime], None]:
    """Each watchdog pass also a notifier pass on the simulated clock, every notice to ``path``."""
    from dispatch.service.notifier import Notifier

    Path(path).write_text("", encoding="utf-8")
    notifier = Notifier(runtime, log_file=path, base_url="http://127.0.0.1:8000")

    def on_tick(at: datetime) -> None:
        notifier.tick(tick)
        then(at)

    return on_tick


def _run(ctx: Ctx, days: int, tickets_per_day: float, seed: int, street: str, first: date, tick: timedelta,
         kafka: KafkaSettings | None, reference_file: str | None = None, notify_log: str | None = None) -> dict[str, Any]:
    runtime, display = _open(ctx, reference_file)
    try:
        start = datetime.combine(first, time(), tzinfo=ZoneInfo(runtime.reference.timezone))
        end = start + timedelta(days=days)
        runtime.clock = SimulatedClock(start)
        s = runtime.reference.street(street)
        tally = SimulationTally()
        commands = simulate(runtime.reference, s.id, days, tickets_per_day, seed, start, tally=tally)
        with _progress(sys.stderr.isatty() and not ctx.as_json, start, end) as on_tick:
            if notify_log is not None:
                on_tick = _notifying(runtime, notify_log, tick, on_tick)
            if kafka is None:
                report = run_embedded(runtime, commands, start=start, end=end, tick=tick, on_tick=on_tick)
            else:
                from dispatch.cli.pipeline import run_kafka

                report = run_kafka(runtime, kafka, commands, start=start, end=end, tick=tick, on_tick=on_tick)
        result = figures(runtime.engine, runtime.reference, s.id, start, end)
    finally:
        runtime.close()
    return {
        "demo": {"mode": "embedded" if kafka is None else "kafka", "street": s.id, "street_name": s.name, "days": days,
                 "tickets_per_day": tickets_per_day, "seed": seed, "start": start.isoformat(),
                 "end": end.isoformat(), "tick_minutes": tick.total_seconds() / 60, "database": display,
                 **({} if kafka is None else {"kafka": kafka.bootstrap, "topic_prefix": kafka.prefix})},
        "tally": tally.as_dict(),
        "engine": report.as_dict(),
        "agreement": agreement(tally, report.escalations, result),
        **result,
    }
