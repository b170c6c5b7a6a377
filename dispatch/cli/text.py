"""User text on a terminal: control characters shown, never obeyed.

A description, reason or actor id comes from residents and outside systems; printed raw,
a newline could forge a line of ``dispatch history`` and an escape sequence could drive
the terminal. ``printable`` shows every control character as an escape (``\\n``,
``\\x1b``); ``cell`` also escapes rich's markup for table cells.

``Table`` draws the lists and figures of the read commands (``tickets``, ``inbox``, ``overdue``,
``dashboard``, ``sla``) as columns of text: their cells are short, and importing rich to draw them
took longer than the query (rich's console and table: ~60 ms of a 0.35 s start). Rich stays for
the tables whose long cells must wrap to the terminal (the reference data, the what-if, the
timeline) and for progress bars.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal
from unicodedata import combining, east_asian_width

import click

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["Table", "cell", "console", "local_time", "printable", "width"]

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


def width(text: str) -> int:
    """How many terminal columns ``text`` takes: a Chinese character two, a combining mark none."""
    if text.isascii():
        return len(text)
    return sum(0 if combining(c) else 2 if east_asian_width(c) in "WF" else 1 for c in text)


class Table:
    """Columns of text under a header and a rule; every cell made ``printable``.

    >>> t = Table("community", "open"); t.add_column("late", justify="right"); t.add_row("水库村", "1", "0")
    >>> print("\\n".join(t.lines()))
    community  open  late
    ─────────────────────
    水库村     1        0
    """

    def __init__(self, *columns: str, title: str | None = None) -> None:
        self.title = title
        self.columns: list[str] = []
        self.justify: list[Literal["left", "right"]] = []
        self.rows: list[list[str]] = []
        for column in columns:
            self.add_column(column)

    def add_column(self, name: str, justify: Literal["left", "right"] = "left") -> None:
        self.columns.append(printable(name))
        self.justify.append(justify)

    def add_row(self, *cells: Any) -> None:
        self.rows.append([printable(c) for c in cells])

    def lines(self) -> list[str]:
        widths = [max([width(self.columns[i]), *(width(row[i]) for row in self.rows)]) for i in range(len(self.columns))]

        def line(cells: list[str]) -> str:
            padded = [c + " " * (w - width(c)) if j == "left" else " " * (w - width(c)) + c
                      for c, w, j in zip(cells, widths, self.justify)]
            return "  ".join(padded).rstrip()

        total = sum(widths) + 2 * (len(widths) - 1)
        title = None if self.title is None else printable(self.title)
        head = [] if title is None else [" " * max(0, (total - width(title)) // 2) + title]
        return [*head, line(self.columns), "─" * total, *(line(row) for row in self.rows)]

    def echo(self) -> None:
        click.echo("\n".join(self.lines()))


def local_time(value: Any, tz: Any) -> str:
    """A time as the grid centre reads it: its local wall time, ``MM-DD HH:MM`` (— for none)."""
    return value.astimezone(tz).strftime("%m-%d %H:%M") if value is not None else "—"
