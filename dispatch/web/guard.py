"""What stands at the door: who is asking (bearer tokens), how much they may ask (rate
limits), how big a request may be, the response headers every answer carries, and the
request metrics. Decisions about *what* an identity may do are not here: ``dispatch.service.access``."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dispatch.adapters import user_tables
from dispatch.domain.errors import Unauthenticated
from dispatch.domain.identity import Identity
from dispatch.web.problems import problem

__all__ = ["Limits", "LocalCounts", "Metrics", "RateLimiter", "SecurityHeaders", "SignInLimiter", "SizeLimit", "authenticate"]


@dataclass(frozen=True)
class Limits:
    """``DISPATCH_WEB_*`` settings: the largest request body, writes per identity per minute
    (with a burst), password sign-ins per client address per minute."""

    max_body: int = 64 * 1024
    writes_per_minute: float = 120.0
    write_burst: int = 60
    signins_per_minute: float = 60.0  # password sign-in attempts per client address (failures: SignInLimiter)

    @classmethod
    def from_env(cls, env: dict[str, str]) -> Limits:
        def number(name: str, default: float) -> float:
            raw = env.get(name)
            if raw is None:
                return default
            try:
                value = float(raw)
                if value <= 0:
                    raise ValueError
            except ValueError:
                from dispatch.domain.errors import DispatchError

                raise DispatchError(f"{name}={raw!r}: give a positive number") from None
            return value

        return cls(max_body=int(number("DISPATCH_WEB_MAX_BODY", cls.max_body)),
                   writes_per_minute=number("DISPATCH_WEB_WRITES_PER_MINUTE", cls.writes_per_minute),
                   write_burst=int(number("DISPATCH_WEB_WRITE_BURST", cls.write_burst)),
                   signins_per_minute=number("DISPATCH_WEB_SIGNINS_PER_MINUTE", cls.signins_per_minute))


class LocalCounts:
    """Where the door's counts live in a process of its own: (kind, key) → (value, at), changed
    under one lock, timed by the monotonic clock (rate limiting is about load, not the business
    clock). ``dispatch.adapters.user_tables.SharedCounts`` keeps the same rows in the database, with the same four
    operations each in one statement, for web workers that must count together (``dispatch web
    --workers N``); tests/unit/test_door_counts.py holds the two to the same answers."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], tuple[float, float]] = {}
        self._lock = threading.Lock()

    def now(self) -> float:
        return time.monotonic()

    def take(self, kind: str, key: str, rate: float, burst: float) -> float:
        """One token from the bucket ``key`` (``rate`` a second, up to ``burst``): 0 if there was
        one, else the seconds until there is."""
        now = self.now()
        with self._lock:
            tokens, then = self._rows.get((kind, key), (burst, now))
            tokens = min(burst, tokens + max(0.0, now - then) * rate)
            if tokens < 1:
                return (1 - tokens) / rate
            self._rows[(kind, key)] = (tokens - 1, now)
            self._forget_quiet(now)
            return 0.0

    def fail(self, kind: str, key: str, forget: float) -> None:
        """One more failure of ``key`` (counted from 1 again after ``forget`` quiet seconds)."""
        now = self.now()
        with self._lock:
            failures, last = self._rows.get((kind, key), (0.0, now))
            self._rows[(kind, key)] = ((0.0 if now - last > forget else failures) + 1, now)
            self._forget_quiet(now)

    def forget(self, kind: str, key: str) -> None:
        with self._lock:
            self._rows.pop((kind, key), None)

    def read(self, kind: str, key: str) -> tuple[float, float] | None:
        with self._lock:
            return self._rows.get((kind, key))

    def _forget_quiet(self, now: float) -> None:
        if len(self._rows) > 50_000:
            self._rows = {k: v for k, v in self._rows.items() if now - v[1] < FORGET_SECONDS}


FORGET_SECONDS = 900.0  # a count quiet this long is forgotten (a bucket refills long before)


class RateLimiter:
    """A token bucket per key (an identity's name, a client address), refilled at ``rate`` per
    minute up to ``burst``, kept in ``counts`` (this process's, or the deployment's)."""

    def __init__(self, rate_per_minute: float, burst: int, *, kind: str = "rate", counts: Any = None):
        self.rate, self.burst, self.kind = rate_per_minute / 60.0, float(burst), kind
        self.counts = counts if counts is not None else LocalCounts()

    def take(self, key: str) -> float:
        """0 if allowed now, else the seconds to wait."""
        wait: float = self.counts.take(self.kind, key, self.rate, self.burst)
        return wait


class SignInLimiter:
    """Every password sign-in, whatever the door (page or API), passes here first. Per client
    address and per account name (known or not: the answer never tells them apart), failures
    count; the first ``free`` of a key cost nothing, then each further try must wait twice as
    long as the one before (1 s, 2 s, 4 s … at most ``cap``), answered 429 with ``Retry-After``.
    A key's failures are forgotten ``forget`` seconds after its last one; a correct password
    forgets its account's (its address's stay: one colleague signing in does not unlock a
    guesser at the next desk). The failures are kept in ``counts``: this process's, or — for web
    workers side by side — the deployment's database, so a guesser gains nothing by spreading
    tries over workers."""

    def __init__(self, *, per_address: int = 10, per_account: int = 10, cap: float = 900.0,
                 forget: float = FORGET_SECONDS, counts: Any = None):
        self.free = {"address": per_address, "account": per_account}
        self.cap, self.forget = cap, forget
        self.counts = counts if counts is not None else LocalCounts()

    def _delay(self, kind: str, failures: int) -> float:
        over = failures - self.free[kind]
        return 0.0 if over < 0 else min(self.cap, 2.0 ** over)

    @staticmethod
    def _keys(address: str, account: str) -> tuple[tuple[str, str], tuple[str, str]]:
        return ("failures:address", address), ("failures:account", account.casefold())

    def wait(self, address: str, account: str) -> float:
        """0 if a try is allowed now, else the seconds until it is."""
        now, longest = self.counts.now(), 0.0
        for kind, key in self._keys(address, account):
            row = self.counts.read(kind, key)
            if row is None or now - row[1] > self.forget:
                continue
            failures, last = row
            longest = max(longest, last + self._delay(kind.split(":")[1], int(failures)) - now)
        return max(0.0, longest)

    def failed(self, address: str, account: str) -> None:
        for kind, key in self._keys(address, account):
            self.counts.fail(kind, key, self.forget)

    def succeeded(self, account: str) -> None:
        self.counts.forget("failures:account", account.casefold())


def authenticate(request: Request, engine: Any, now: Any) -> Identity:
    """The identity behind ``Authorization: Bearer dsp_…``; raises ``Unauthenticated``."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthenticated("sign in first: send 'Authorization: Bearer <token>' (see POST /api/session)")
    client = request.client.host if request.client else "?"
    return user_tables.check_token(engine, now, value.strip(), where=f"from {client} {request.method} {request.url.path}")


class SizeLimit:
    """Refuses a request body over ``limit`` bytes with 413, whether or not it says its length;
    the paths in ``uploads`` (a form with a photo) may send up to ``upload_limit``."""

    def __init__(self, app: ASGIApp, limit: int, uploads: tuple[str, ...] = (), upload_limit: int = 0):
        self.app, self.base, self.uploads, self.upload_limit = app, limit, uploads, upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.limit = self.upload_limit if scope.get("path") in self.uploads else self.base
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await self._refuse(scope, receive, send)
            return
        seen, limit, refused = 0, self.limit, False

        async def counted() -> Message:
            # a body that grows past the limit as it arrives (chunked, or longer than it said) is
            # answered 413 here and now; the application is told the client left, and whatever it
            # answers after that is dropped (a body parser would have made the overflow a 400)
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    refused = True
                    await self._refuse(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def unless_refused(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, counted, unless_refused)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.upload_limit if scope.get("path") in self.uploads else self.base
        accept = dict(scope.get("headers") or []).get(b"accept", b"")
        if scope.get("path") in self.uploads and b"text/html" in accept:
            # a person's form: back to it, where the refusal is said in its words (never a JSON page)
            from starlette.responses import RedirectResponse

            await RedirectResponse(f"{scope['path']}?refused=too_large", status_code=303)(scope, receive, send)
            return
        from starlette.requests import Request as Asked

        response = problem(413, "too_large", f"the request body is over {limit} bytes",
                           instance=scope.get("path"), chinese=Asked(scope),
                           words={"limit": f"{limit // 1024} KB" if limit < 1024 * 1024 else f"{limit // 1048576} MB"})
        await response(scope, receive, send)


class SecurityHeaders:
    """Headers on every answer: no sniffing, no framing, no referrer, no caching (but of the
    static files), a strict content security policy, and HSTS when served over HTTPS. (Plain
    ASGI: it adds headers to the answer's first message and touches nothing else.)"""

    def __init__(self, app: ASGIApp, https: bool, images: tuple[str, ...] = ()):
        self.app = app
        # pages draw with scripts of their own origin only; charts and the map set element styles
        policy = ("default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
                  f"img-src 'self' data: {' '.join(images)}".rstrip() + "; style-src 'self' 'unsafe-inline'")
        self.headers = [("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY"),
                        ("Referrer-Policy", "same-origin"), ("Content-Security-Policy", policy),
                        ("Cross-Origin-Opener-Policy", "same-origin")]
        if https:
            self.headers.append(("Strict-Transport-Security", "max-age=31536000"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                h = MutableHeaders(scope=message)
                for name, value in self.headers:
                    h.setdefault(name, value)
                if not static:  # answers and pages may hold personal data
                    h.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, with_headers)


@dataclass
class Metrics:
    """Prometheus metrics of one web process (its own registry)."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter("dispatch_http_requests", "HTTP requests by route, method and status",
                                ["route", "method", "status"], registry=r)
        self.seconds = Histogram("dispatch_http_request_seconds", "HTTP request time by route", ["route"],
                                 registry=r)
        self.commands = Counter("dispatch_commands", "Commands by type and outcome (applied, or the error code)",
                                ["type", "outcome"], registry=r)
        self.lag = Gauge("dispatch_projection_lag_events", "Events recorded but not yet in the read models",
                         registry=r, multiprocess_mode="max")

    def exposed(self) -> CollectorRegistry:
        """What ``/metrics`` shows: this process's registry, or — web workers side by side, whose
        figures prometheus_client keeps in ``PROMETHEUS_MULTIPROC_DIR`` — every worker's, summed."""
        import os

        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            return self.registry
        from prometheus_client import multiprocess

        summed = CollectorRegistry()
        multiprocess.MultiProcessCollector(summed)
        return summed

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """Counts every answer by route, method and status, and times it to its first byte (an
        event stream's time is its start, not its life). Plain ASGI, like the other guards."""

        async def measured(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            started, status = time.perf_counter(), 0

            def observe(code: int) -> None:
                route = getattr(scope.get("route"), "path", "unmatched")
                self.requests.labels(route, scope["method"], str(code)).inc()
                self.seconds.labels(route).observe(time.perf_counter() - started)

            async def sending(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    observe(status)
                await send(message)

            try:
                await app(scope, receive, sending)
            finally:
                if not status:
                    observe(500)

        return measured
