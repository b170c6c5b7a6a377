"""Who acts at the CLI: the local operator (an admin, named by --by or local:<user>), or a
registered user with --as, held to that user's role and scope like every other door."""

from __future__ import annotations

import json
from pathlib import Path

from tests.unit.safety_support import invoke

AT = "2026-11-20T09:00:00+08:00"


def _db(tmp_path: Path) -> str:
    db = str(tmp_path / "d.db")
    assert invoke("--db", db, "init").code == 0
    return db


def _dispatched(db: str) -> str:
    ticket = invoke("--db", db, "report", "--grid", "cj-shuiku-g01", "--category", "市容环卫", "-d", "垃圾",
                    "--at", AT).out.strip()
    assert invoke("--db", db, "accept", ticket, "--at", "2026-11-20T09:05:00+08:00").code == 0
    assert invoke("--db", db, "whistle", ticket, "--at", "2026-11-20T09:10:00+08:00").code == 0
    return ticket


def test_a_desk_acting_as_itself_cannot_answer_another_departments_call(tmp_path: Path) -> None:
    db = _db(tmp_path)
    assert invoke("--db", db, "users", "add", "hw-desk", "--role", "department", "--scope", "环卫").code == 0
    ticket = _dispatched(db)
    refused = invoke("--db", db, "--as", "hw-desk", "--json", "ack", ticket, "--dept", "城管")
    assert refused.code == 1 and json.loads(refused.err)["error"]["code"] == "forbidden"
    assert "Forbidden" not in refused.err
    done = invoke("--db", db, "--as", "hw-desk", "--json", "ack", ticket, "--dept", "环卫")
    assert done.code == 0, done.err
    actor = json.loads(invoke("--db", db, "--json", "history", ticket).out)["events"][-1]["actor"]
    assert actor["id"] == "hw-desk" and actor["department"] == "huanwei"


def test_a_user_sets_no_business_time_and_names_no_one_else(tmp_path: Path) -> None:
    db = _db(tmp_path)
    assert invoke("--db", db, "users", "add", "cg-desk", "--role", "department", "--scope", "chengguan").code == 0
    ticket = _dispatched(db)
    at = invoke("--db", db, "--as", "cg-desk", "--json", "ack", ticket, "--dept", "城管", "--at", AT)
    assert at.code == 1 and json.loads(at.err)["error"]["code"] == "backfill_not_allowed"
    by = invoke("--db", db, "--as", "cg-desk", "ack", ticket, "--dept", "城管", "--by", "someone")
    assert by.code == 1 and "--by" in by.err
    empty = invoke("--db", db, "ack", ticket, "--dept", "城管", "--by", "")
    assert empty.code == 1 and "--by" in empty.err
    assert len(json.loads(invoke("--db", db, "--json", "history", ticket).out)["events"]) == 3  # nothing recorded


def test_users_tokens_and_the_audit_log_from_the_cli(tmp_path: Path) -> None:
    db = _db(tmp_path)
    assert invoke("--db", db, "users", "add", "lead", "--role", "leader", "--scope", "street:漕泾镇").code == 0
    again = invoke("--db", db, "users", "add", "lead", "--role", "leader", "--scope", "street:caojing")
    assert again.code == 1 and "exists" in again.err
    bad = invoke("--db", db, "users", "add", "x", "--role", "leader")
    assert bad.code == 1 and "street or a district" in bad.err
    listed = json.loads(invoke("--db", db, "--json", "users", "list").out)
    assert listed[0]["name"] == "lead" and listed[0]["scope"] == ["caojing"]
    token = json.loads(invoke("--db", db, "--json", "users", "token", "lead", "--days", "7").out)
    assert token["token"].startswith("dsp_" + token["id"] + "_")
    assert token["token"] not in invoke("--db", db, "--json", "users", "tokens").out  # shown once
    assert invoke("--db", db, "users", "revoke", token["id"]).code == 0
    assert invoke("--db", db, "users", "disable", "lead").code == 0
    # a leader cannot manage users, even from the CLI
    assert invoke("--db", db, "users", "add", "boss2", "--role", "admin").code == 0
    refused = invoke("--db", db, "--as", "lead", "users", "list")
    assert refused.code == 1 and "disabled" in refused.err
    audit = json.loads(invoke("--db", db, "--json", "users", "audit").out)
    assert [row["action"] for row in audit][:4] == ["user.add", "user.disable", "token.revoke", "token.issue"]


def test_a_leader_reads_only_its_own_street(tmp_path: Path) -> None:
    db = _db(tmp_path)
    assert invoke("--db", db, "users", "add", "lead", "--role", "leader", "--scope", "street:caojing").code == 0
    _dispatched(db)
    own = invoke("--db", db, "--as", "lead", "--json", "dashboard", "--street", "caojing", "--to", "2026-11-21")
    assert own.code == 0, own.err
    other = invoke("--db", db, "--as", "lead", "--json", "dashboard", "--street", "xinqi", "--to", "2026-11-21")
    assert other.code == 1 and json.loads(other.err)["error"]["code"] == "forbidden"
    write = invoke("--db", db, "--as", "lead", "report", "--grid", "cj-shuiku-g01", "--category", "市容环卫", "-d", "x")
    assert write.code == 1 and "may not report" in write.err


def test_an_answer_at_the_cli_may_name_its_dispatch(tmp_path: Path) -> None:
    db = _db(tmp_path)
    ticket = _dispatched(db)
    ahead = invoke("--db", db, "--json", "ack", ticket, "--dept", "城管", "--dispatch-no", "2",
                   "--at", "2026-11-20T09:20:00+08:00")
    assert ahead.code == 1 and json.loads(ahead.err)["error"]["code"] == "awaiting_dispatch"
    assert "has not reached dispatch 2 yet (it is at dispatch 1)" in ahead.err
    done = invoke("--db", db, "ack", ticket, "--dept", "城管", "--dispatch-no", "1", "--at", "2026-11-20T09:20:00+08:00")
    assert done.code == 0, done.err
