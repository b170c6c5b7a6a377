"""User text on a terminal: control characters shown, never obeyed.

A description, reason or actor id comes from residents and outside systems; printed raw,
a newline could forge a line of ``dispatch history`` and an escape sequence could drive
the terminal. ``printable`` shows every control character as an escape (``\\n``,
``\\x1b``); ``cell`` also escapes rich's markup for table cells.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

__all__ = ["cell", "console", "plain_table", "printable"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    return _CONTROL.sub(lambda m: _NAMED.get(m.group(), f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256
                                            else f"\\u{ord(m.group()):04x}"), text)


def cell(value: Any) -> str:
    from rich.markup import escape  # rich only for the commands that draw tables

    return escape(printable(value))


def console() -> Console:
    from rich.console import Console

    found = Console(emoji=False, highlight=False)
    return found if found.width >= 140 else Console(width=140, emoji=False, highlight=False)


def plain_table(*columns: str) -> Table:
    """A table of ``columns`` drawn without borders or highlighting (a list's rows)."""
    from rich.table import Table

    return Table(*columns, box=None, highlight=False)
