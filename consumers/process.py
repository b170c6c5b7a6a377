"""What each consumer process's own entry point shares (``python -m consumers.engine`` …):
the click options every process takes, and running it with one ``bootstrap()``.

``dispatch serve | relay | project`` run the same loops from the CLI."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import click

from dispatch.adapters.kafka import KafkaSettings
from dispatch.bootstrap import Runtime, bootstrap, freeze_startup

__all__ = ["process_options", "run_process"]


def process_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed((
        click.option("--db", help="Event store URL (postgresql://… or a SQLite path) [env DISPATCH_DB]."),
        click.option("--kafka", help="Bootstrap servers [env DISPATCH_KAFKA]."),
        click.option("--topic-prefix", help="Topic name prefix [env DISPATCH_TOPIC_PREFIX; default dispatch.]."),
        click.option("--log-level", default="INFO", show_default=True),
        click.option("--metrics-port", type=click.IntRange(0, 65535),
                     help="Serve /metrics, /healthz and /readyz on this port (127.0.0.1; 0: any free port).",
                     envvar="DISPATCH_METRICS_PORT"),
    )):
        f = option(f)
    return f


def run_process(db: str | None, kafka: str | None, topic_prefix: str | None, log_level: str,
                body: Callable[[Runtime, KafkaSettings], Any], stop: threading.Event | None = None) -> None:
    """Bootstrap once (logging, clock, stores, Kafka settings), run ``body(runtime, settings)``, close.

    A database or broker that is not ready at start-up (or goes away under ``body``) is waited
    for: the start is tried again at growing intervals (1 s, 2 s … at most 30 s), with one
    "unavailable" line, "still unavailable" lines at growing intervals and one line when it is
    back — until it works or ``stop`` is set (SIGTERM)."""
    from consumers.base import TRANSIENT
    from consumers.metrics import Availability

    configure_logging(log_level)
    availability = Availability(None, "start-up")
    wait = 1.0
    while True:
        runtime = None
        try:
            runtime = bootstrap(db, kafka=kafka, topic_prefix=topic_prefix, log_level=log_level)
            freeze_startup()
            availability.succeeded()
            body(runtime, runtime.kafka)
            return
        except TRANSIENT as error:
            availability.failed(error, wait)
            if stop is not None and stop.wait(wait) or stop is None and _sleep(wait):
                return
            wait = min(wait * 2, 30.0)
        finally:
            if runtime is not None:
                runtime.close()


def _sleep(seconds: float) -> bool:
    time.sleep(seconds)
    return False


def configure_logging(level: str) -> None:
    """The processes' log lines, before the first connection (so its failure is logged too)."""
    from dispatch.adapters.logs import configure_logging as configure

    configure(level)
