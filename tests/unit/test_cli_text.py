"""The read commands' tables: columns line up on a terminal whatever the script of a cell, and a
cell never drives the terminal."""

from __future__ import annotations

from dispatch.cli.text import Table, width


def test_columns_line_up_when_names_are_chinese() -> None:
    table = Table("community", title="communities")
    table.add_column("open", justify="right")
    table.add_column("score", justify="right")
    for name, open_, score in (("水库村", "1", "—"), ("漕泾新苑居委会", "12", "87.5%"), ("Shuiku", "0", "—")):
        table.add_row(name, open_, score)
    title, head, rule, *rows = table.lines()
    assert width(rule) == width(head) and set(rule) == {"─"}
    # a right-justified column ends at the same terminal column in every row, the header's too
    assert {width(line) for line in (head, *rows)} == {width(rule)}
    assert [line.rstrip()[-1] for line in rows] == ["—", "%", "—"]
    # the middle column (right-justified) ends at the same terminal column in every row too
    ends = set()
    for line in (head, *rows):
        name, middle, _ = line.split()
        ends.add(width(line[:line.index(middle, len(name)) + len(middle)]))
    assert ends == {width("漕泾新苑居委会") + 2 + len("open")}
    # the title sits over the middle of the table
    assert title.strip() == "communities" and abs(2 * (width(title) - len("communities")) + len("communities")
                                                  - width(rule)) <= 1


def test_a_cell_shows_control_characters_instead_of_obeying_them() -> None:
    table = Table("description")
    table.add_row("路灯\n不亮\x1b[2J")
    *_, row = table.lines()
    assert "\n" not in row and "\x1b" not in row
    assert row == "路灯\\n不亮\\x1b[2J"


def test_width_counts_terminal_columns() -> None:
    assert width("abc") == 3 and width("水库村") == 6 and width("e\u0301") == 1 and width("ＡＢ") == 4
