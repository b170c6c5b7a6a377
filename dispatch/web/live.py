"""Live pages: one watcher per process follows where the read models stand and tells every open
event stream (server-sent events) which tickets moved; each stream passes on only what its
signed-in viewer may see (``access.sees_change``), and the page fetches its own fragment again
and merges it row by row (``static/live.js``), never touching a row someone is typing in.

The watcher checks the read models' position every ``every`` seconds (one small query for the
whole process, however many pages are open), and at once when poked: after a write made here in
Kafka mode, and — embedded — by the process's projector (``projections.poller.Projector``) when it
applied something. An event's id is the read models' position: a browser that
reconnects (a lost line, a restarted server) sends it back as ``Last-Event-ID`` and is told to
catch up when the position moved meanwhile.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from dispatch.adapters.logs import get_logger
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import StreamingResponse

from dispatch.domain.errors import DispatchError
from dispatch.service import cockpit, queries

__all__ = ["Hub", "stream"]

log = get_logger("dispatch.web.live")
STREAM_SECONDS = 300  # a stream ends after this; the browser reconnects at once with its last position
KEEPALIVE_SECONDS = 15
KEPT = 512  # moves remembered for streams that fall behind (further back: "catch up with everything")


class Move:
    """One move of the read models: their position after it and the tickets that moved (None:
    not known, every page catches up)."""

    __slots__ = ("seq", "position", "changes")

    def __init__(self, seq: int, position: int, changes: list[dict[str, Any]] | None):
        self.seq, self.position, self.changes = seq, position, changes


class Hub:
    def __init__(self, runtime: Any, *, embedded: bool, every: float = 0.25):
        self.runtime, self.embedded, self.every = runtime, embedded, every
        self.position = 0
        self.seq = 0
        self.moves: deque[Move] = deque(maxlen=KEPT)
        self.streams = 0
        self.closing = False
        self._signature: tuple[int, int] | None = None
        self._versions: dict[str, int] | None = None
        self._unplaced: set[str] | None = None  # the reports waiting to be placed at the last look
        self._loop: asyncio.AbstractEventLoop | None = None
        self._moved: asyncio.Event | None = None
        self._poke = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the watcher ---------------------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """One watcher per hub: an application started again (a second server on it) replaces it."""
        if self._thread is not None and self._thread.is_alive():
            self.stop()
        self._stop.clear()
        self._loop, self._moved = loop, asyncio.Event()
        try:  # where the read models stand before any page's stream opens: a move after it is told
            self.check()
        except Exception:  # noqa: BLE001 - the watcher's thread looks again at its first tick
            pass
        self._thread = threading.Thread(target=self._run, name="dispatch-live", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._poke.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def close(self) -> None:
        """The process is stopping: every open stream ends now (from any thread, e.g. a signal handler)."""
        self.closing = True
        if self._loop is not None:
            try:
                self._loop.call_soon_threadsafe(self._wake)
            except RuntimeError:  # the loop is closed already
                pass

    def poke(self) -> None:
        """A write was made here: look now rather than at the next tick."""
        self._poke.set()

    def _run(self) -> None:
        failing = False
        while not self._stop.is_set():
            self._poke.wait(self.every)
            self._poke.clear()
            try:
                self.check()
                if failing:
                    log.info("live pages: the read models can be read again")
                failing = False
            except Exception:  # noqa: BLE001 - a failed look is tried again at the next tick
                if not failing:
                    log.exception("live pages: cannot read the read models' position")
                failing = True

    def check(self) -> Move | None:
        """Look once: when the read models moved, note which tickets did, and which reports
        started or stopped waiting to be placed (待定位; whichever process took them in), and wake
        the streams."""
        if self.embedded:
            from dispatch.projections import catch_up

            catch_up(self.runtime)
        waiting = queries.unplaced_waiting(self.runtime)
        unplaced = [] if self._unplaced is None else [_unplaced(token) for token in sorted(waiting ^ self._unplaced)]
        self._unplaced = waiting
        signature = cockpit.changes(self.runtime)
        if signature == self._signature:
            return self._told(unplaced) if unplaced else None
        first = self._signature is None
        touched = self._touched(signature)
        if touched is not None and self._versions is not None:
            changes = queries.live_moved(self.runtime, self._versions, touched)
            self._signature = signature
        else:
            while True:  # the versions as of the signature kept: a move between the two reads is not lost
                versions, changes = queries.live_changes(self.runtime, self._versions)
                settled = cockpit.changes(self.runtime)
                if settled == signature:
                    break
                signature = settled  # a projector moved the read models while we looked: look again
            self._signature, self._versions = signature, versions
        self.position = signature[0]
        if first:
            return None
        return self._told(changes + unplaced)

    def _told(self, changes: list[dict[str, Any]]) -> Move:
        self.seq += 1
        move = Move(self.seq, self.position, changes)
        self.moves.append(move)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake)
        return move

    def _touched(self, signature: tuple[int, int]) -> set[str] | None:
        """The tickets this process's projector moved since the last look, when it alone moved the
        one read model source (the embedded store's) all that way; else None: compare every open
        ticket's version (another process projected, or Kafka mode)."""
        projector = getattr(self.runtime, "projector", None)
        if projector is None or self._signature is None or not signature[1] == self._signature[1] == 1:
            return None
        touched: set[str] | None = projector.moved_between(self._signature[0], signature[0])
        return touched

    def announce(self, token: str) -> None:
        """A report waiting to be placed (待定位) was taken in here: the streams whose viewers see
        it are told now, as of the read models' position (every process's watcher finds it at its
        next look too, ``queries.unplaced_waiting``; this one will not tell it twice)."""
        if self._unplaced is not None:
            self._unplaced = self._unplaced | {token}
        self._told([_unplaced(token)])

    def _wake(self) -> None:
        moved, self._moved = self._moved, asyncio.Event()
        if moved is not None:
            moved.set()

    async def wait(self, timeout: float) -> None:
        if self._moved is None:
            await asyncio.sleep(timeout)
            return
        try:
            await asyncio.wait_for(self._moved.wait(), timeout)
        except TimeoutError:
            pass

    def since(self, seq: int) -> tuple[list[Move], bool]:
        """The moves after ``seq``, and whether some were forgotten (then: catch up with everything)."""
        newer = [m for m in self.moves if m.seq > seq]
        lost = bool(newer) and newer[0].seq != seq + 1 or (not newer and self.seq > seq)
        return newer, lost


def _unplaced(token: str) -> dict[str, Any]:
    """A report waiting to be placed, as a move (``access.sees_change``: the grid centres' consoles)."""
    return {"ticket_id": f"unplaced-{token}", "unplaced": True}


def _last_id(request: Request) -> int | None:
    text = request.headers.get("last-event-id") or request.query_params.get("since") or ""
    return int(text) if text.isdigit() else None


def stream(request: Request, still_allowed: Callable[[], Any],
           sees: Callable[[dict[str, Any]], bool] | None) -> StreamingResponse:
    """``changed`` (its id the read models' position, its data the moved tickets' ids this viewer
    may see) whenever a move concerns the viewer; a comment every 15 s keeps proxies from closing
    the line. The stream ends after ``STREAM_SECONDS`` or when the viewer is no longer allowed
    (the browser reconnects, and a refused reconnect ends it)."""
    hub: Hub = request.app.state.service.live

    def relevant(moves: list[Move]) -> list[str] | None:
        shown: list[str] = []
        for move in moves:
            if move.changes is None:
                return None
            shown += [c["ticket_id"] for c in move.changes if sees is None or sees(c)]
        return shown

    def message(position: int, ids: list[str] | None) -> str:
        return f"id: {position}\nevent: changed\ndata: {orjson.dumps(ids or []).decode()}\n\n"

    async def events() -> AsyncIterator[str]:
        hub.streams += 1
        try:
            yield "retry: 2000\n\n"
            cursor = hub.seq
            since = _last_id(request)
            if since is not None and since != hub.position:  # moved while this page was away
                yield message(hub.position, None)
            else:
                yield f"id: {hub.position}\nevent: ready\ndata: {hub.position}\n\n"
            started = last_word = time.monotonic()
            while time.monotonic() - started < STREAM_SECONDS:
                await hub.wait(timeout=1.0)
                if hub.closing or await request.is_disconnected():
                    return
                moves, lost = hub.since(cursor)
                if moves:
                    cursor = moves[-1].seq
                ids = None if lost else relevant(moves)
                if lost or ids:
                    yield message(hub.position, ids)
                    last_word = time.monotonic()
                elif time.monotonic() - last_word >= KEEPALIVE_SECONDS:
                    try:
                        await run_in_threadpool(still_allowed)
                    except DispatchError:
                        return
                    yield ": still here\n\n"
                    last_word = time.monotonic()
        finally:
            hub.streams -= 1

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
