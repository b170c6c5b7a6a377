"""``dispatch show`` on an ended ticket: a call nobody answered is closed out, not waiting."""

from __future__ import annotations

import re
from pathlib import Path

from tests.unit.safety_support import invoke


def test_show_says_an_unanswered_call_of_a_cancelled_ticket_is_closed_out(tmp_path: Path) -> None:
    db = str(tmp_path / "t.db")
    assert invoke("--db", db, "init").code == 0
    made = invoke("--db", db, "report", "--grid", "cj-shuiku-g01", "--category", "市容环卫", "-d", "垃圾焚烧")
    assert made.code == 0, made.err
    ticket = re.search(r"[0-9a-f]{8}-[0-9a-f-]{27}", made.out).group(0)  # type: ignore[union-attr]
    for step in (["accept", ticket], ["whistle", ticket], ["cancel", ticket, "--reason", "重复上报"]):
        ran = invoke("--db", db, *step)
        assert ran.code == 0, (step, ran.err)
    shown = invoke("--db", db, "show", ticket).out
    calls = [line for line in shown.splitlines() if line.strip().startswith("call ")]
    assert calls and all("closed out, unanswered" in line and "waiting" not in line for line in calls), shown


def test_json_is_taken_after_the_subcommand_too(tmp_path: Path) -> None:
    import json

    db = str(tmp_path / "t.db")
    assert invoke("--db", db, "init").code == 0
    at = ("--as-of", "2026-11-20T12:00:00+08:00")
    before = invoke("--db", db, "--json", "sla", "--by", "department", *at)
    after = invoke("--db", db, "sla", "--by", "department", *at, "--json")
    assert before.code == after.code == 0, after.err
    assert json.loads(after.out) == json.loads(before.out)
