"""Waiting for something another thread or process does: a bounded poll, no timing claim."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["wait_for"]


def wait_for(predicate: Callable[[], Any], *, timeout: float = 120, every: float = 0.25, what: str = "") -> Any:
    """The predicate's first truthy value; AssertionError if none came within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
