"""Waiting for something another thread or process does: a bounded poll, no timing claim."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["wait_for"]


def wait_for(predicate: Callable[[], Any], *, timeout: float = 120, every: float = 0.25, what: str = "") -> Any:
    """The predicate's first truthy value; AssertionError if none came within ``timeout`` seconds.
    A predicate that raises has not come true yet (a ticket not there yet, a server not answering
    yet): it is asked again until the deadline, and the last error is told then."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception as error:  # noqa: BLE001 - not yet; said at the deadline
            last, value = error, None
        if value:
            return value
        time.sleep(every)
    said = f" (last: {type(last).__name__}: {last})" if last is not None else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}{said}")
