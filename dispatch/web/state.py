"""One web process's state: the runtime, who is asking, the limits, and where commands go.

Embedded (no ``--kafka``): a command is applied here by one writer thread that takes every
command waiting — from however many requests — and applies them in one transaction
(``GroupCommit``: the engine's batch path; each request gets its own outcome); one projector
thread keeps the read models caught up (``projections.poller.Projector``: woken by every write,
waited for by every read), and a background thread runs the SLA watchdog, so nothing waits for a
CLI command. Kafka mode: the command is produced to the intake topic and the
engine's recorded outcome is awaited (``dispatch.service.submission``); this process never writes
the event store.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from dispatch.adapters.logs import get_logger
from fastapi import HTTPException, Request

from dispatch.adapters import user_tables
from dispatch.domain.errors import AlreadyReported, DispatchError, DuplicateCommand, Forbidden, HiddenTicket
from dispatch.domain.identity import Identity
from dispatch.web.guard import Limits, LocalCounts, Metrics, RateLimiter, SignInLimiter, authenticate

__all__ = ["WebService"]

log = get_logger("dispatch.web")
SESSION_HOURS = 8
# threads apart from the requests' few (``dispatch web --threads``): what-ifs and exports worked on
# at once; pages' forms that write (they wait inside for the transaction, or the engine); and, in
# Kafka mode, API writes waiting for the engine's outcome — waits, not work
THREADS_APART = {"long": 2, "forms": 16, "waits": 64}


class WebService:
    def __init__(self, runtime: Any, limits: Limits, *, submitter: Any = None, watchdog_every: float = 60.0,
                 base_url: str = "http://127.0.0.1:8000", notify: bool = True, shared: bool = False):
        self.runtime, self.limits = runtime, limits
        self.metrics = Metrics()
        # the door's counts: this process's own, or (``shared``: web workers side by side) the database's
        counts = user_tables.SharedCounts(runtime.engine) if shared else LocalCounts()
        self.writes = RateLimiter(limits.writes_per_minute, limits.write_burst, kind="writes", counts=counts)
        self.signins = RateLimiter(limits.signins_per_minute, max(1, int(limits.signins_per_minute)), kind="signins",
                                   counts=counts)
        self.guesses = SignInLimiter(counts=counts)
        self.submitter = submitter  # Kafka mode: dispatch.service.submission.KafkaSubmitter
        self._write_lock = threading.Lock()
        self.commit = GroupCommit(runtime.app, self._write_lock) if submitter is None else None
        _tables_first(runtime.engine)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.watchdog_every = watchdog_every
        self.base_url, self.notify = base_url, notify
        self.notify_down: dict[str, str] = {}  # channels down, for /readyz's detail
        self._apart: dict[str, Any] = {}  # threads apart from the requests' (``THREADS_APART``)
        from dispatch.web.live import Hub

        # embedded: one projector keeps the read models caught up (poked by every write), reads
        # wait for it rather than project themselves, and the live pages' watcher follows it
        self.live = Hub(runtime, embedded=False)
        self.projector = None
        if submitter is None:
            from dispatch.projections.poller import Projector

            self.projector = Projector(runtime, moved=self.live.poke)
            runtime.projector = self.projector

    # -- lifecycle of the process --------------------------------------------------------------------

    def start(self) -> None:
        """Embedded: run the watchdog and the notifier in-process (Kafka mode: their own processes)."""
        if self.submitter is None:
            thread = threading.Thread(target=self._background, name="dispatch-background", daemon=True)
            thread.start()
            self._threads.append(thread)
            if self.notify:
                thread = threading.Thread(target=self._notifier, name="dispatch-notifier", daemon=True)
                thread.start()
                self._threads.append(thread)

    def _notifier(self) -> None:
        """The notifier (``dispatch.service.notifier``) on this process's clock, every 2 s — in one process
        of the deployment at a time (``OneAtATime``: web workers side by side send nothing twice)."""
        from consumers.metrics import NotifyMetrics
        from dispatch.adapters.database import OneAtATime
        from dispatch.service.notifier import Notifier

        turn = OneAtATime(self.runtime.engine, "web-notifier")
        try:
            Notifier(self.runtime, base_url=self.base_url,
                     metrics=NotifyMetrics(self.metrics.registry, self.notify_down)).run(self._stop, 2.0, turn=turn.mine)
        finally:
            turn.release()

    def stop(self) -> None:
        self._stop.set()
        self.live.stop()
        if self.projector is not None:
            self.projector.stop()
            if self.runtime.projector is self.projector:
                self.runtime.projector = None  # reads after the server stopped catch up themselves
        if self.commit is not None:
            self.commit.stop()
        for thread in self._threads:
            thread.join(timeout=10)
        if self.submitter is not None:
            self.submitter.close()

    def _background(self) -> None:
        """The watchdog, every ``watchdog_every`` seconds (the projector keeps the read models
        caught up; a tick catches up itself too) — in one process of the deployment at a time
        (``OneAtATime``; another takes over when that one stops)."""
        from dispatch.adapters.database import OneAtATime
        from dispatch.service.watchdog import Watchdog

        watchdog = Watchdog(self.runtime, submit=self._execute_batch)
        turn = OneAtATime(self.runtime.engine, "web-watchdog")
        while not self._stop.is_set():
            try:
                if turn.mine():
                    watchdog.tick()
                    watchdog.keep_rollups()
            except Exception:  # noqa: BLE001 - a background failure is logged, the server goes on
                log.exception("background watchdog failed")
            self._stop.wait(self.watchdog_every)
        turn.release()

    def _moved(self) -> None:
        """A write was made here: the projector (embedded) or the watcher (Kafka mode) looks now."""
        if self.projector is not None:
            self.projector.poke()
        else:
            self.live.poke()

    def _execute_batch(self, commands: list[Any]) -> list[Any]:
        with self._write_lock:
            outcomes: list[Any] = self.runtime.app.execute_batch(commands)
        self._moved()
        return outcomes

    # -- who is asking -------------------------------------------------------------------------------

    def identify(self, request: Request) -> Identity:
        return authenticate(request, self.runtime.engine, self.runtime.clock.now())

    def sign_in(self, request: Request, name: str, password: str, *, label: str = "sign-in") -> user_tables.Token:
        """Every password sign-in, page or API: the address's attempts and both the address's and
        the account's failures are limited first (429 with ``Retry-After``, the same for any name);
        then the password is checked (``user_tables.check_password``: the same answer, in about the same
        time, for an unknown name, a wrong password and a locked account); then a session token."""
        client = request.client.host if request.client else "?"
        wait = max(self.signins.take(client), self.guesses.wait(client, name))
        if wait:
            raise HTTPException(429, f"too many sign-ins from {client}: try again in {wait:.0f} s",
                                headers={"Retry-After": str(int(wait) + 1)})
        now = self.runtime.clock.now()
        try:
            who = user_tables.check_password(self.runtime.engine, now, name, password, where=f"from {client} ({label})")
        except DispatchError:
            self.guesses.failed(client, name)
            raise
        self.guesses.succeeded(name)
        return user_tables.issue_token(self.runtime.engine, now, who.name, days=SESSION_HOURS / 24, label=label,
                                 by=who.name)

    def refused(self, request: Request, error: DispatchError) -> None:
        """Audit a refusal by a signed-in identity (token refusals are audited where checked)."""
        who = getattr(request.state, "identity", None)
        if isinstance(error, (Forbidden, HiddenTicket)) and who is not None:
            user_tables.audit(self.runtime.engine, self.runtime.clock.now(), who.name, "forbidden", "refused",
                        f"{request.method} {request.url.path}: {error}")

    # -- doing ---------------------------------------------------------------------------------------

    def submit(self, build: Callable[[Any], Any], kind: type, command_id: str | None) -> dict[str, Any]:
        """Build the command (authorized, validated) and apply it, or hand it to Kafka."""
        command: Any = None
        try:
            command = self._admitted(build)
            if self.submitter is not None:
                result: dict[str, Any] = self.submitter.submit(command)
            else:
                assert self.commit is not None
                result = self._answer(command, self.commit.apply(command))
        except DispatchError as error:
            self._refused(command, kind, error.code)
            raise
        return self._done(command, result)

    async def submit_waiting(self, build: Callable[[Any], Any], kind: type) -> dict[str, Any]:
        """``submit`` for a route that runs on the event loop: the command is built in a thread,
        and its recording awaited without holding one — the request threads are few
        (``threads``), and a write waiting for its batch's transaction leaves them to the reads."""
        import asyncio

        from starlette.concurrency import run_in_threadpool

        command: Any = None
        try:
            command = await run_in_threadpool(self._admitted, build)
            if self.submitter is not None:  # produced, then the engine's outcome polled for: a thread that waits
                result: dict[str, Any] = await self._in_thread("waits", self.submitter.submit, command)
            else:
                assert self.commit is not None
                outcome = await asyncio.wrap_future(self.commit.hand_over(command))
                if isinstance(outcome.error, (DuplicateCommand, AlreadyReported)):  # applied before: its
                    result = await run_in_threadpool(self._answer, command, outcome)  # first outcome, from the store
                else:
                    result = self._answer(command, outcome)
        except DispatchError as error:
            self._refused(command, kind, error.code)
            raise
        return self._done(command, result)

    async def long_job(self, work: Callable[[], Any]) -> Any:
        """Work that can take seconds (a what-if, an export) in a thread of the long jobs' own
        (``THREADS_APART["long"]`` at once), so it never holds one of the requests' few threads."""
        return await self._in_thread("long", work)

    async def form(self, work: Callable[[], Any]) -> Any:
        """A page's form or an Open311 report that writes, in a thread of the forms' own
        (``THREADS_APART["forms"]``): it waits there for its write's transaction (in Kafka mode,
        for the engine), never in one of the requests' few threads."""
        return await self._in_thread("forms", work)

    async def _in_thread(self, kind: str, work: Callable[..., Any], *args: Any) -> Any:
        import anyio
        import anyio.to_thread

        if kind not in self._apart:
            self._apart[kind] = anyio.CapacityLimiter(THREADS_APART[kind])
        return await anyio.to_thread.run_sync(work, *args, limiter=self._apart[kind])

    def _admitted(self, build: Callable[[Any], Any]) -> Any:
        """The command, built (authorized, validated) and within its actor's write rate."""
        command = build(self.runtime)
        wait = self.writes.take(command.actor.id)
        if wait:
            raise HTTPException(429, f"too many writes: try again in {wait:.0f} s",
                                headers={"Retry-After": str(int(wait) + 1)})
        return command

    def _refused(self, command: Any, kind: type, code: str) -> None:
        self.metrics.commands.labels(getattr(command, "type", kind.__name__.lower()), code).inc()

    def _done(self, command: Any, result: dict[str, Any]) -> dict[str, Any]:
        self.metrics.commands.labels(command.type, result["outcome"]).inc()
        self._moved()
        return result

    def _answer(self, command: Any, outcome: Any) -> dict[str, Any]:
        """What a request is told of its recorded command (``outcome``, or its refusal raised); a
        command applied before (its idempotency key again) is told its first outcome, read from
        the store."""
        if isinstance(outcome.error, DuplicateCommand):
            return replayed(self.runtime, command)
        if isinstance(outcome.error, AlreadyReported) and command.command_id:
            return replayed(self.runtime, command, outcome.error.ticket_id)
        if outcome.error is not None:
            raise outcome.error
        return {"ticket_id": str(outcome.ticket_id), "event": outcome.events[0], "version": outcome.version,
                "occurred_at": command.occurred_at, "received_at": command.actor.received_at,
                "command_id": command.command_id, "outcome": "applied"}

    def outcome(self, command_id: str, who: Identity) -> dict[str, Any]:
        if self.submitter is None:
            raise HTTPException(404, "commands are applied at once here; there is nothing pending")
        result: dict[str, Any] = self.submitter.lookup(command_id, who)
        return result

    def read(self, query: Callable[[Any], Any]) -> Any:
        return query(self.runtime)

    def ready(self) -> dict[str, str]:
        from sqlalchemy import text

        checks = {}
        try:
            with self.runtime.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as error:  # noqa: BLE001 - reported, not raised
            checks["database"] = f"unreachable: {type(error).__name__}"
        if self.submitter is not None:
            checks["kafka"] = self.submitter.ready()
        return checks

    def notices(self) -> dict[str, str]:
        """Notification channels down (told on /readyz, without making the door unready)."""
        return dict(self.notify_down)

    def lag(self) -> int | None:
        if self.submitter is not None:
            return None
        from dispatch.projections import stored_position
        from dispatch.projections.poller import STORE_SOURCE

        recorder: Any = self.runtime.app.recorder
        top = recorder.max_notification_id() or 0
        return max(0, top - (stored_position(self.runtime.engine, STORE_SOURCE) or 0))


def _tables_first(engine: Any) -> None:
    """The tables this process's threads would create on first use (users, notifications, case
    numbers, …), created now, before any thread starts: on SQLite a table created by one thread
    can make another thread's statement fail ("database schema has changed")."""
    from dispatch.adapters import case_register, holiday_table, outbox, outcome_log, parked_store, unplaced
    from dispatch.adapters.database import ensure_created

    from dispatch.projections import create_tables

    create_tables(engine)  # the read models' too: a new database's live pages watch them from the start
    user_tables.ensure_tables(engine)
    outbox.ensure_tables(engine)
    outcome_log.ensure_table(engine)
    unplaced.ensure_table(engine)
    parked_store.ensure_table(engine)
    ensure_created(engine, case_register.METADATA)
    ensure_created(engine, holiday_table.METADATA)


class GroupCommit:
    """Commands from concurrent requests applied together. Each request thread hands its command
    over and waits; one writer thread takes every command waiting (up to ``most``) and applies
    them in order in one transaction (``execute_batch``, as the Kafka engine does), then answers
    each with its own outcome. A refusal is that command's alone (an outcome with its error);
    should the transaction itself fail, the batch's commands are applied again one by one, so the
    failure reaches only the command that causes it."""

    def __init__(self, app: Any, lock: threading.Lock, most: int = 256):
        self.app, self.lock, self.most = app, lock, most
        self._waiting: queue.SimpleQueue[tuple[Any, Future[Any]] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._started = threading.Lock()

    def apply(self, command: Any) -> Any:
        """The command's outcome (``dispatch.service.application.Outcome``), once it is recorded."""
        return self.hand_over(command).result()

    def hand_over(self, command: Any) -> Future[Any]:
        """The command's outcome to come (a future, for a caller that waits otherwise)."""
        if self._thread is None or not self._thread.is_alive():
            with self._started:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._run, name="dispatch-writer", daemon=True)
                    self._thread.start()
        done: Future[Any] = Future()
        self._waiting.put((command, done))
        return done

    def stop(self) -> None:
        with self._started:
            if self._thread is not None and self._thread.is_alive():
                self._waiting.put(None)
                self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while True:
            first = self._waiting.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.most:
                try:
                    item = self._waiting.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._waiting.put(None)  # stop after this batch
                    break
                batch.append(item)
            self._apply(batch)

    def _apply(self, batch: list[tuple[Any, Future[Any]]]) -> None:
        try:
            with self.lock:
                outcomes = self.app.execute_batch([command for command, _ in batch])
        except Exception as error:  # noqa: BLE001 - each command again alone, below
            if len(batch) == 1:
                batch[0][1].set_exception(error)
                return
            for item in batch:
                self._apply([item])
            return
        for (_, done), outcome in zip(batch, outcomes):
            done.set_result(outcome)


def replayed(runtime: Any, command: Any, ticket_id: Any = None) -> dict[str, Any]:
    """The first outcome of a command applied before (the same idempotency key again)."""
    from dispatch.aggregates import ticket_id_for

    tid = ticket_id or getattr(command, "ticket_id", None) or ticket_id_for(
        external_ref=getattr(command, "external_ref", None), channel=getattr(command, "channel", ""),
        command_id=command.command_id)
    for event in runtime.app.events.get(tid):
        state = vars(event)
        if state.get("command_id") == command.command_id:
            actor = state.get("actor") or {}
            return {"ticket_id": str(tid), "event": type(event).__name__, "version": event.originator_version,
                    "occurred_at": state["occurred_at"], "received_at": actor.get("received_at"),
                    "command_id": command.command_id, "outcome": "replayed"}
    raise DuplicateCommand(f"command {command.command_id} was already used for another step")

