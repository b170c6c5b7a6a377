"""Figures a test wants the person running the suite to see (how many operations and requests
a fuzzer ran, …): ``say(line)`` during the test; ``tests/conftest.py`` prints them at the end."""

from __future__ import annotations

LINES: list[str] = []


def say(line: str) -> None:
    LINES.append(line)
