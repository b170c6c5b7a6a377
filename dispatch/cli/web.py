"""``dispatch web``: serve the HTTP API (and, later, the pages) with uvicorn."""

from __future__ import annotations

import os
from typing import Any

import click

from dispatch.cli import main
from dispatch.cli.context import Ctx, pass_ctx

__all__: list[str] = []

# requests worked on at once by default (``--threads``), as measured by scripts/bench_api.py: on
# SQLite a request's database work is the interpreter's own, on PostgreSQL much of it a wait
THREADS_SQLITE, THREADS_POSTGRES = 4, 12


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 for every interface: put HTTPS in front, or give --certfile).")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--kafka", metavar="HOST:PORT",
              help="Kafka mode: commands go to the intake topic and the engine applies them [env DISPATCH_KAFKA].")
@click.option("--topic-prefix", metavar="PREFIX", help="Topic name prefix [env DISPATCH_TOPIC_PREFIX].")
@click.option("--certfile", type=click.Path(exists=True, dir_okay=False), help="Serve HTTPS with this certificate.")
@click.option("--keyfile", type=click.Path(exists=True, dir_okay=False), help="The certificate's private key.")
@click.option("--cors-origin", "cors", multiple=True, metavar="ORIGIN",
              help="Let pages from this origin call the API (repeat); off by default.")
@click.option("--watchdog-every", type=click.FloatRange(1, 3600), default=60.0, show_default=True,
              help="Embedded: seconds between SLA watchdog runs.")
@click.option("--map-tiles", metavar="URL", envvar="DISPATCH_MAP_TILES",
              help="Tile URL template of an intranet map service for the dashboards' map "
                   "(https://…/{z}/{x}/{y}.png) [env DISPATCH_MAP_TILES; default: no base map].")
@click.option("--map-attribution", metavar="TEXT", envvar="DISPATCH_MAP_ATTRIBUTION",
              help="The map service's attribution line [env DISPATCH_MAP_ATTRIBUTION].")
@click.option("--open311-public-reads", is_flag=True,
              help="Let anyone read Open311 requests without an api_key: only their public fields (no "
                   "description beyond the category, no media, positions to about 100 m). Off: every GET of "
                   "requests needs a key.")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True, envvar="DISPATCH_WEB_WORKERS",
              help="Web worker processes side by side, on PostgreSQL (Kafka mode or not): sign-ins, limits, live "
                   "pages and metrics are shared through the database. The embedded SQLite default keeps one "
                   "[env DISPATCH_WEB_WORKERS].")
@click.option("--threads", type=click.IntRange(1, 256), envvar="DISPATCH_WEB_THREADS",
              help="Requests worked on at once per process (their database work runs in threads; the rest wait "
                   "their turn, oldest first) [env DISPATCH_WEB_THREADS; default 4 on SQLite, 12 on PostgreSQL, "
                   "where a request spends more of its time waiting for the server].")
@click.option("--base-url", envvar="DISPATCH_BASE_URL", metavar="URL",
              help="Where people open these pages (the links in notifications) [env DISPATCH_BASE_URL; default "
                   "this server's address].")
@pass_ctx
def web(ctx: Ctx, host: str, port: int, kafka: str | None, topic_prefix: str | None, certfile: str | None,
        keyfile: str | None, cors: tuple[str, ...], watchdog_every: float, map_tiles: str | None,
        map_attribution: str | None, open311_public_reads: bool, workers: int, threads: int | None,
        base_url: str | None) -> None:
    """Serve the HTTP API: embedded on the database alone, or in Kafka mode with --kafka."""
    import uvicorn

    from dispatch.adapters import user_tables
    from dispatch.bootstrap import freeze_startup
    from dispatch.web.worker import build

    if bool(certfile) != bool(keyfile):
        raise click.UsageError("give --certfile and --keyfile together")
    runtime = ctx.runtime
    if workers > 1 and runtime.db.is_sqlite:
        raise click.UsageError(f"--workers {workers}: the embedded SQLite database takes one writer, so it is served by "
                               "one process; run several workers on PostgreSQL (--db postgresql://… or DISPATCH_DB)")
    kafka = kafka or os.environ.get("DISPATCH_KAFKA")
    scheme = "https" if certfile else "http"
    options = {"db": ctx.db_url, "kafka": kafka, "topic_prefix": topic_prefix, "https": bool(certfile),
               "cors": list(cors), "watchdog_every": watchdog_every, "map_tiles": map_tiles,
               "map_attribution": map_attribution, "open311_public_reads": open311_public_reads,
               "base_url": base_url or f"{scheme}://{host}:{port}", "shared": workers > 1,
               "threads": threads or (THREADS_SQLITE if runtime.db.is_sqlite else THREADS_POSTGRES)}
    # the options are checked here, once, before any worker starts (a worker's refusal would only be logged)
    app = build(runtime, options)
    if user_tables.count(runtime.engine) == 0:
        click.echo("dispatch: note: no users yet — create the first admin with "
                   "'dispatch users add NAME --role admin --password'", err=True)
    click.echo(f"dispatch web: {scheme}://{host}:{port}/api/ ({'Kafka mode' if kafka else 'embedded'}"
               f"{f', {workers} workers' if workers > 1 else ''}; OpenAPI at /api/openapi.json)", err=True)
    settings: dict[str, Any] = {"host": host, "port": port, "ssl_certfile": certfile, "ssl_keyfile": keyfile,
                                "log_level": "warning", "server_header": False, "proxy_headers": False,
                                "timeout_graceful_shutdown": 5}
    if workers > 1:
        app.state.service.stop()
        ctx.close()
        _serve_workers(workers, options, settings)
        return
    live = app.state.service.live
    freeze_startup()

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            live.close()  # the pages' event streams end at once (the browsers reconnect when it is back)
            super().handle_exit(sig, frame)

    Server(uvicorn.Config(app, **settings)).run()


def _serve_workers(workers: int, options: dict[str, Any], settings: dict[str, Any]) -> None:
    """uvicorn's supervisor: one listening socket, ``workers`` processes (each wires itself
    through ``dispatch.web.worker.app``; a dead or hung one is replaced), their metrics summed
    through a scratch folder. On the one socket an idle worker takes the next connection, so a
    worker busy with a long request leaves new ones to the others (a kept-alive connection stays
    with the worker that took it)."""
    import json
    import tempfile

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from dispatch.web.worker import ENV

    with tempfile.TemporaryDirectory(prefix="dispatch-metrics-") as metrics:
        os.environ[ENV] = json.dumps(options)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics
        config = uvicorn.Config("dispatch.web.worker:app", factory=True, workers=workers, **settings)
        Multiprocess(config, sockets=[config.bind_socket()]).run()
