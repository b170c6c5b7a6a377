"""What every test shares: the lines tests asked to be shown (``tests.said``), printed in the
summary at the end of the run."""

from __future__ import annotations

from typing import Any

from tests import said


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if said.LINES:
        terminalreporter.section("figures")
        for line in said.LINES:
            terminalreporter.write_line(line)
