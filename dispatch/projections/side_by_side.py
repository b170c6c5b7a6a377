"""A question's families read side by side, each on a connection of its own.

A dashboard or a district's quarter asks the database several independent questions (a family
of figures each). PostgreSQL works on each statement in a process of its own and SQLite lets go
of the interpreter while it steps, so read a few at a time they finish sooner than one after the
other (measured on a 2-CPU machine, a district's quarter: PostgreSQL 252 → 155 ms, SQLite 96 → 71
ms; a street's month as of mid-month on PostgreSQL: see docs/benchmarks-read-side.md).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.pool import SingletonThreadPool, StaticPool

__all__ = ["SIDE_BY_SIDE", "side_by_side"]

# statements at once (more than three only queue on a 2-CPU machine)
SIDE_BY_SIDE = 3


def side_by_side(engine: Engine, conn: Connection, readers: dict[Any, Callable[[Connection], Any]]) -> dict[Any, Any]:
    """Each reader's answer, keyed as ``readers``: ``SIDE_BY_SIDE`` at a time, on ``conn`` and
    connections of their own (each statement sees its own snapshot, side by side or not: read
    committed on PostgreSQL, a SELECT outside a transaction on SQLite); one after the other on
    ``conn`` where the engine has one connection only (an in-memory database). The asking
    thread reads too and never waits for a connection: when the pool has none to spare, it reads
    everything itself. A reader that fails makes the whole fail with its error."""
    if isinstance(engine.pool, (StaticPool, SingletonThreadPool)) or len(readers) < 2:
        return {key: read(conn) for key, read in readers.items()}
    todo = deque(readers)  # taken under ``turn``
    out: dict[Any, Any] = {}
    failed: list[BaseException] = []
    turn = threading.Condition()
    count = {"taken": 0, "finished": 0}

    def work(on: Connection) -> None:
        while True:
            with turn:
                if failed or not todo:
                    return
                key = todo.popleft()
                count["taken"] += 1
            try:
                answer = readers[key](on)
            except BaseException as error:  # noqa: BLE001 - raised again by the asking thread
                with turn:
                    failed.append(error)
                    count["finished"] += 1
                    turn.notify_all()
                return
            with turn:
                out[key] = answer
                count["finished"] += 1
                turn.notify_all()

    def helper() -> None:
        if not todo:  # all taken while this thread started: no connection needed
            return
        try:
            with engine.connect() as own:
                work(own)
        except Exception:  # noqa: BLE001 - no connection to spare: the others read its share
            return

    for _ in range(min(SIDE_BY_SIDE, len(readers)) - 1):
        threading.Thread(target=helper, name="side-by-side", daemon=True).start()
    work(conn)
    with turn:  # the readers the helpers took, finished (a helper still waiting took none)
        turn.wait_for(lambda: count["finished"] == count["taken"])
        if failed:
            raise failed[0]
        return dict(out)
