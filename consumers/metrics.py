"""Metrics and health for each process (engine, relay, projector, watchdog, a department's desk),
on a port of its own (``--metrics-port``; 0 or none: not served):

- ``/metrics`` — Prometheus text: consumer lag per partition, commands by outcome (applied, or
  the refusal's code), dead letters by code, batch latency, relay and projector lag, watchdog
  escalations and the overdue calls it saw, answers parked for their dispatch, a desk's calls and
  answers, and whether each dependency answers;
- ``/healthz`` — 200 while the process runs;
- ``/readyz`` — 200 while its database and broker answer, else 503 with what is down.

``Availability`` keeps the log quiet and honest while a dependency is down: one warning when it
goes, a "still unavailable" line at growing intervals, one line when it is back.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from dispatch.adapters.logs import get_logger
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Availability", "NotifyMetrics", "ProcessHealth"]

log = get_logger("dispatch.health")


class ProcessHealth:
    """One process's metrics (its own registry) and readiness."""

    def __init__(self, process: str):
        self.process = process
        r = self.registry = CollectorRegistry()
        self.lag = Gauge("dispatch_consumer_lag", "Messages behind the end of each partition consumed",
                         ["topic", "partition"], registry=r)
        self.outcomes = Counter("dispatch_commands", "Commands applied, or refused by error code", ["outcome"],
                                registry=r)
        self.dead_letters = Counter("dispatch_dead_letters", "Dead letters sent, by code", ["code"], registry=r)
        self.batch_seconds = Histogram("dispatch_batch_seconds", "Time to apply and record one batch", registry=r)
        self.events = Counter("dispatch_events", "Events handled (relayed or projected)", registry=r)
        self.store_lag = Gauge("dispatch_store_lag_events", "Events recorded in the store and not yet relayed",
                               registry=r)
        self.escalations = Counter("dispatch_watchdog_escalations", "Escalations the watchdog recorded", registry=r)
        self.overdue = Gauge("dispatch_overdue_deadlines", "Missed deadlines the watchdog's last pass found",
                             registry=r)
        self.parked = Gauge("dispatch_parked_answers", "Answers waiting for the dispatch they answer", registry=r)
        self.calls = Counter("dispatch_desk_calls", "Whistle calls a department's desk received", registry=r)
        self.answers = Counter("dispatch_desk_answers", "Answers a department's desk sent", registry=r)
        self.up = Gauge("dispatch_dependency_up", "1 while the dependency answers", ["dependency"], registry=r)
        self.down: dict[str, str] = {}
        for dependency in ("database", "kafka"):
            self.up.labels(dependency).set(1)
        self._server: ThreadingHTTPServer | None = None

    def set_lag(self, topic: str, partition: int, lag: int | None) -> None:
        if lag is not None:
            self.lag.labels(topic, str(partition)).set(max(0, lag))

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Serve ``/metrics``, ``/healthz`` and ``/readyz`` in a daemon thread; returns the port."""
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the standard library's name
                if self.path.startswith("/metrics"):
                    self._answer(200, generate_latest(owner.registry), CONTENT_TYPE_LATEST)
                elif self.path.startswith("/healthz"):
                    self._answer(200, b'{"status": "ok"}', "application/json")
                elif self.path.startswith("/readyz"):
                    body = {"process": owner.process, "down": owner.down}
                    self._answer(503 if owner.down else 200, json.dumps(body).encode(), "application/json")
                else:
                    self._answer(404, b'{"status": "no such page"}', "application/json")

            def _answer(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:  # scrapes are not news
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="dispatch-health", daemon=True).start()
        bound = int(self._server.server_address[1])
        log.info("metrics and health served", process=self.process, port=bound)
        return bound

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


class NotifyMetrics:
    """The notifier's figures on a process's registry: sent, failed and retried per channel kind,
    the age of the oldest message not sent yet, and the channels down (each a ``/readyz`` line)."""

    def __init__(self, registry: CollectorRegistry, down: dict[str, str]):
        r, self.down = registry, down
        self._sent = Counter("dispatch_notify_sent", "Notifications sent, per channel kind", ["channel"], registry=r)
        self._failed = Counter("dispatch_notify_failed", "Notifications given up after their retries, per channel kind",
                               ["channel"], registry=r)
        self._retried = Counter("dispatch_notify_retried", "Failed sends to be tried again, per channel kind",
                                ["channel"], registry=r)
        self._oldest = Gauge("dispatch_notify_oldest_unsent_seconds", "Age of the oldest notification not sent yet",
                             registry=r)
        self._down = Gauge("dispatch_notify_channels_down", "Channels whose last three sends failed", registry=r)

    def sent(self, kind: str) -> None:
        self._sent.labels(kind).inc()

    def failed(self, kind: str) -> None:
        self._failed.labels(kind).inc()

    def retried(self, kind: str) -> None:
        self._retried.labels(kind).inc()

    def oldest(self, seconds: float | None) -> None:
        self._oldest.set(seconds or 0)

    def channels_down(self, lines: dict[str, str]) -> None:
        self._down.set(len(lines))
        for key in [k for k in self.down if k.startswith("notify channel")]:
            del self.down[key]
        self.down.update(lines)


class Availability:
    """Whether a process's dependencies answer, and the log lines about it."""

    def __init__(self, health: ProcessHealth | None, what: str):
        self.health, self.what = health, what
        self.since: float | None = None
        self.next_line = 0.0
        self.lines = 0

    @staticmethod
    def dependency(error: BaseException) -> str:
        from kafka.errors import KafkaError

        return "kafka" if isinstance(error, KafkaError) else "database"

    def failed(self, error: BaseException, backoff: float) -> None:
        dependency, now = self.dependency(error), time.monotonic()
        reason = f"{type(error).__name__}: {error}"
        if self.health is not None:
            self.health.up.labels(dependency).set(0)
            self.health.down[dependency] = reason[:300]
        if self.since is None:
            self.since, self.next_line, self.lines = now, now + 5, 1
            log.warning(f"{dependency} unavailable; retrying", process=self.what, error=reason, backoff_s=backoff)
        elif now >= self.next_line:
            self.lines += 1
            self.next_line = now + min(300, 5 * 2 ** self.lines)  # 5 s, 10 s, 20 s … at most every 5 minutes
            log.warning(f"{dependency} still unavailable", process=self.what, error=reason,
                        down_s=round(now - self.since, 1))

    def succeeded(self) -> None:
        if self.since is not None:
            log.warning("dependencies available again", process=self.what,
                        down_s=round(time.monotonic() - self.since, 1))
            self.since = None
        if self.health is not None and self.health.down:
            for dependency in [d for d in self.health.down if d in ("database", "kafka")]:
                self.health.up.labels(dependency).set(1)
                del self.health.down[dependency]
