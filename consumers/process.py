"""What each consumer process's own entry point shares (``python -m consumers.engine`` …):
the click options every process takes, and running it with one ``bootstrap()``.

``dispatch serve | relay | project`` run the same loops from the CLI."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from dispatch.bootstrap import Runtime, bootstrap
from dispatch.kafka import KafkaSettings

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
                body: Callable[[Runtime, KafkaSettings], Any]) -> None:
    """Bootstrap once (logging, clock, stores, Kafka settings), run ``body(runtime, settings)``, close."""
    runtime = bootstrap(db, kafka=kafka, topic_prefix=topic_prefix, log_level=log_level)
    try:
        body(runtime, runtime.kafka)
    finally:
        runtime.close()
