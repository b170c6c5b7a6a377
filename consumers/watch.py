"""The watchdog as a process (``dispatch watchdog``): a pass every ``interval`` seconds until
SIGTERM, counting its escalations and the missed deadlines it found, surviving a database that
is away for a while (a line when it goes, "still unavailable" now and then, a line when it is back)."""

from __future__ import annotations

import threading
from typing import Any

import structlog

from consumers.base import TRANSIENT
from consumers.health import Availability, ProcessHealth

__all__ = ["watch"]

log = structlog.get_logger("dispatch.watchdog")


def watch(dog: Any, interval: float, stop: threading.Event, *, metrics_port: int | None = None) -> None:
    health = ProcessHealth("watchdog")
    if metrics_port is not None:
        health.serve(metrics_port)
    availability, backoff = Availability(health, "watchdog"), 1.0
    try:
        while not stop.is_set():
            try:
                outcomes = dog.tick()
            except TRANSIENT as error:
                availability.failed(error, backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, interval)
                continue
            availability.succeeded()
            backoff = 1.0
            health.overdue.set(len(outcomes))
            health.escalations.inc(sum(1 for o in outcomes if getattr(o, "error", None) is None))
            stop.wait(interval)
    finally:
        health.close()
        log.info("watchdog stopped")
