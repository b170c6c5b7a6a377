"""The watchdog as a process (``dispatch watchdog``): a pass every ``interval`` seconds until
SIGTERM, counting its escalations and the missed deadlines it found, surviving a database that
is away for a while (a line when it goes, "still unavailable" now and then, a line when it is back)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dispatch.adapters.logs import get_logger

from consumers.base import TRANSIENT
from consumers.metrics import Availability, ProcessHealth

__all__ = ["Sent", "kafka_submit", "watch"]

log = get_logger("dispatch.watchdog")


@dataclass(frozen=True)
class Sent:
    """An escalation handed to the broker (the engine applies it, or refuses a repeat by its id)."""

    ticket_id: Any
    command: Any
    error: None = None


def kafka_submit(settings: Any) -> Callable[[list[Any]], list[Any]]:
    """Kafka mode: escalations go to the watchdog's own intake (``<prefix>intake.watchdog``),
    which its principal alone may write and where the engine takes nothing but escalations.
    Their command ids are deterministic (``watchdog:<ticket>:<rung>``), so a pass that runs before
    the read model shows the last one's escalations sends repeats the engine ignores."""
    from dispatch.adapters.kafka import intake_key, make_producer
    from dispatch.domain.commands import command_to_json

    producer = make_producer(settings)
    topic = settings.topics.intake_of("watchdog")

    def submit(commands: list[Any]) -> list[Any]:
        futures = [producer.send(topic, key=intake_key(c), value=command_to_json(c)) for c in commands]
        producer.flush(timeout=60)
        for future in futures:
            future.get(timeout=60)
        return [Sent(c.ticket_id, c) for c in commands]

    return submit


def watch(dog: Any, interval: float, stop: threading.Event, *, metrics_port: int | None = None) -> None:
    health = ProcessHealth("watchdog")
    if metrics_port is not None:
        health.serve(metrics_port)
    availability, backoff = Availability(health, "watchdog"), 1.0
    try:
        while not stop.is_set():
            try:
                outcomes = dog.tick()
                dog.keep_rollups()
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
