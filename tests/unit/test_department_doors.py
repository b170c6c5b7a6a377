"""A door per department: its topics' names, valid ASCII whatever the department's id, and what
the engine does with a message that comes through a department's answers topic."""

from __future__ import annotations

import json
from typing import Any

import pytest

from consumers.engine import through_door
from dispatch.adapters.kafka import Topics
from dispatch.adapters.kafka.topics import department_slug
from dispatch.domain.commands import parse_command
from dispatch.domain.errors import ForgedDepartment, NotAnAnswer

VALID = __import__("re").compile(r"[a-zA-Z0-9._-]{1,249}")


def test_every_department_id_becomes_a_distinct_valid_topic_and_principal_name() -> None:
    ids = ["chengguan", "zhi-fa", "城管", "环卫", "城管局", "Dept_1", "dept-1", "水务 二所", "a" * 60]
    slugs = [department_slug(i) for i in ids]
    assert slugs[:4] == ["chengguan", "zhi-fa", "xn--uisq74f", "xn--rlrt46e"]
    assert len(set(slugs)) == len(ids)
    assert all(VALID.fullmatch(s) and s == s.lower() for s in slugs)
    assert "城管".encode("punycode").decode() == slugs[2].removeprefix("xn--")  # reversible
    t = Topics("city.")
    assert (t.whistle_of("城管"), t.answers_of("城管")) == ("city.whistle.xn--uisq74f", "city.answers.xn--uisq74f")
    assert t.doors(["chengguan"]) == ["city.whistle.chengguan", "city.answers.chengguan"]


def _answer(**fields: Any) -> Any:
    body = {"type": "acknowledge", "command_id": "c1", "ticket_id": "00000000-0000-0000-0000-000000000001",
            "occurred_at": "2026-03-02T09:00:00+08:00", "actor": {"role": "department", "id": "cg-desk"},
            "department": "chengguan"} | fields
    return parse_command(json.dumps({k: v for k, v in body.items() if v is not None}).encode())


def test_the_door_says_which_department_acts() -> None:
    taken = through_door(_answer(), "chengguan", "p.answers.chengguan")
    assert taken.actor.department == "chengguan" and taken.department == "chengguan"
    with pytest.raises(ForgedDepartment, match="claims to act as huanwei"):
        through_door(_answer(department="huanwei"), "chengguan", "p.answers.chengguan")
    with pytest.raises(ForgedDepartment):
        through_door(_answer(actor={"role": "department", "id": "x", "department": "huanwei"}), "chengguan", "t")
    with pytest.raises(ForgedDepartment, match="as centre"):
        through_door(_answer(type="feedback", message="done", department=None, actor={"role": "centre", "id": "c"}),
                     "chengguan", "t")
    with pytest.raises(NotAnAnswer, match="not a 'close' command"):
        through_door(_answer(type="close", department=None), "chengguan", "t")


def test_a_writers_own_intake_says_what_may_be_claimed() -> None:
    from consumers.engine import from_writer
    from dispatch.adapters.kafka.acls import plan
    from dispatch.domain.errors import ForgedActor

    hotline_report = parse_command(json.dumps({
        "type": "report", "command_id": "h1", "occurred_at": "2026-03-02T09:00:00+08:00",
        "actor": {"role": "hotline", "id": "op"}, "grid": "g1", "category": "c", "channel": "hotline",
        "description": "x"}).encode())
    assert from_writer(hotline_report, "hotline", "p.intake.hotline") is hotline_report
    with pytest.raises(ForgedActor, match="claims to act as centre"):
        from_writer(_answer(type="accept", department=None, actor={"role": "centre", "id": "c"}), "hotline", "t")
    with pytest.raises(ForgedActor, match="only the system's escalations"):
        from_writer(hotline_report, "watchdog", "p.intake.watchdog")
    grants = {(g.principal, g.operation, g.name) for g in plan(Topics("p."), ["chengguan"])}
    assert ("User:dispatch-hotline", "WRITE", "p.intake.hotline") in grants
    assert ("User:dispatch-watchdog", "WRITE", "p.intake.watchdog") in grants
    assert ("User:dispatch-engine", "READ", "p.intake.watchdog") in grants
    assert not {g for g in grants if g[0] == "User:dispatch-hotline" and g[2] != "p.intake.hotline"}
    assert ("User:dispatch-desk-chengguan", "WRITE", "p.intake") not in grants
