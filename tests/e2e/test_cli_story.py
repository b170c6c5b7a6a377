"""Whole stories through the command line, on the embedded default (a SQLite file)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from tests.e2e.cli import Cli


def run_story(cli: Cli) -> str:
    # A grid supervisor finds garbage burning on a smog day and reports it.
    ticket = cli("report", "--grid", "cj-shuiku-g01", "--category", "市容环卫", "-d", "垃圾焚烧",
                 "--at", "2026-11-20T09:00:00+08:00", "--by", "网格员张").out.strip()
    # The grid centre accepts it and blows the whistle: 城管 leads by default for this category.
    cli("accept", ticket, "--at", "2026-11-20T09:05:00+08:00", "--by", "中心李")
    cli("whistle", ticket, "--at", "2026-11-20T09:10:00+08:00", "--by", "中心李")
    # 城管 reports in, puts it out, the centre tells the reporter, who is satisfied.
    cli("ack", ticket, "--dept", "城管", "--at", "2026-11-20T09:20:00+08:00", "--by", "队员王")
    cli("handle", ticket, "--dept", "城管", "--result", "已扑灭", "--at", "2026-11-20T10:00:00+08:00")
    cli("feedback", ticket, "--message", "已处理", "--at", "2026-11-20T10:30:00+08:00")
    cli("evaluate", ticket, "--satisfaction", "satisfied", "--at", "2026-11-20T11:00:00+08:00")
    cli("close", ticket, "--at", "2026-11-20T11:10:00+08:00")
    return ticket


def test_report_to_close_story_and_history_lists_times_and_actors(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    cli("init")  # commands other than init refuse a database that does not exist
    ticket = run_story(cli)
    assert len(ticket) == 36  # report prints the id alone

    history = cli("--json", "history", ticket).json()["events"]
    assert [e["event"] for e in history] == ["Reported", "Accepted", "Dispatched", "Acknowledged", "Handled",
                                             "FeedbackGiven", "Evaluated", "Closed"]
    assert history[0]["occurred_at"] == "2026-11-20T09:00:00+08:00"
    # a backfill by the local operator: the business time as given, the time it was received beside it
    received = history[0]["actor"].pop("received_at")
    assert received.startswith(str(date.today().year)) and received != history[0]["occurred_at"]
    assert history[0]["actor"] == {"role": "supervisor", "id": "网格员张"}
    history[3]["actor"].pop("received_at")
    assert history[3]["actor"] == {"role": "department", "id": "队员王", "department": "chengguan"}
    assert cli("--json", "show", ticket).json()["status"] == "closed"
    assert (tmp_path / "dispatch.db").exists()  # the default database, no configuration


ILLEGAL = [
    # (what the user tries, the state it is tried in, a word the one-line error must contain)
    (["ack", "{t}", "--dept", "城管"], "accepted", "no whistle"),
    (["ack", "{t}", "--dept", "消防"], "dispatched", "no call"),
    (["handle", "{t}", "--dept", "环卫"], "acknowledged", "lead"),
    (["evaluate", "{t}", "--satisfaction", "satisfied"], "acknowledged", "cannot evaluate"),
    (["accept", "{t}"], "closed", "closed"),
    (["whistle", "{t}"], "closed", "closed"),
    (["accept", "{t}", "--at", "yesterday"], "reported", "ISO-8601"),
    (["accept", "{t}", "--at", "2026-11-20T08:00:00+08:00"], "reported", "before"),
    (["ack", "{t}", "--dept", "no-such-dept"], "dispatched", "unknown department"),
    (["accept", "00000000-0000-0000-0000-000000000000"], "reported", "no ticket"),
]


def advance(cli: Cli, ticket: str, state: str) -> None:
    steps = {
        "reported": [],
        "accepted": [["accept", ticket, "--at", "2026-11-20T09:05:00+08:00"]],
        "dispatched": [["accept", ticket, "--at", "2026-11-20T09:05:00+08:00"],
                       ["whistle", ticket, "--at", "2026-11-20T09:10:00+08:00"]],
        "acknowledged": [["accept", ticket, "--at", "2026-11-20T09:05:00+08:00"],
                         ["whistle", ticket, "--at", "2026-11-20T09:10:00+08:00"],
                         ["ack", ticket, "--dept", "城管", "--at", "2026-11-20T09:20:00+08:00"],
                         ["ack", ticket, "--dept", "环卫", "--at", "2026-11-20T09:21:00+08:00"]],
    }
    for step in steps[state]:
        cli(*step)


@pytest.mark.parametrize("attempt,state,word", ILLEGAL, ids=[" ".join(a[:1] + [s]) for a, s, _ in ILLEGAL])
def test_an_illegal_step_prints_one_line_exits_non_zero_and_changes_nothing(
    tmp_path: Path, attempt: list[str], state: str, word: str
) -> None:
    cli = Cli(tmp_path)
    cli("init")  # commands other than init refuse a database that does not exist
    if state == "closed":
        ticket = run_story(cli)
    else:
        ticket = cli("report", "--grid", "cj-shuiku-g01", "--category", "city_appearance", "-d", "x",
                     "--at", "2026-11-20T09:00:00+08:00").out.strip()
        advance(cli, ticket, state)
    before = cli("--json", "history", ticket).out

    result = cli(*[a.format(t=ticket) for a in attempt], "--at", "2026-11-20T12:00:00+08:00", check=False) \
        if "--at" not in attempt else cli(*[a.format(t=ticket) for a in attempt], check=False)

    assert result.code != 0
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and word in lines[0], result.err
    assert "Traceback" not in result.err and result.out == ""
    assert cli("--json", "history", ticket).out == before


def test_reporting_the_same_hotline_case_twice_makes_one_ticket(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    cli("init")  # commands other than init refuse a database that does not exist
    args = ["report", "--grid", "cj-hutang-g01", "--category", "construction_transport", "--channel", "hotline",
            "--role", "hotline", "-d", "道路破损", "--ref", "12345-20261120-0001", "--at", "2026-11-20T09:00:00+08:00"]
    first = cli(*args)
    second = cli(*args)
    assert first.out == second.out
    assert "already reported" in second.err
    assert len(cli("--json", "tickets").json()) == 1


def test_unknown_grid_category_and_usage_errors_are_one_line(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    cli("init")  # commands other than init refuse a database that does not exist
    for args, word in [
        (["report", "--grid", "nowhere", "--category", "市容环卫", "-d", "x"], "unknown grid"),
        (["report", "--grid", "cj-shuiku-g01", "--category", "天气", "-d", "x"], "unknown category"),
        (["report", "--grid", "cj-shuiku-g01"], "Missing option"),
        (["frobnicate"], "No such command"),
    ]:
        result = cli(*args, check=False)
        assert result.code != 0 and len(result.err.strip().splitlines()) == 1 and word in result.err, result.err


def test_a_bad_reference_file_is_named_with_its_problem_and_nothing_is_loaded(tmp_path: Path) -> None:
    bad = tmp_path / "places.yaml"
    bad.write_text("timezone: Asia/Shanghai\nworking_hours: ['08:30-12:00']\n"
                   "districts: [{id: d, name: D, streets: [{id: s, name: S, communities: "
                   "[{id: c1, name: C1, grid_count: 1}]}]}]\n"
                   "departments: [{id: a, name: A}]\npriorities: [{id: normal, name: 一般}]\n"
                   "categories: [{id: c, name: C, kind: grid, lead_department: nobody}]\n"
                   "sla: [{category: '*', priority: '*', ack_minutes: 30, handle_minutes: 60, "
                   "feedback_minutes: 90, time_basis: calendar, escalate_every_minutes: 60}]\n", encoding="utf-8")
    cli = Cli(tmp_path)
    result = cli("init", "--reference", str(bad), check=False)
    assert result.code == 1
    assert "places.yaml" in result.err and "categories[0].lead_department" in result.err
    assert not (tmp_path / "dispatch.db").exists()
