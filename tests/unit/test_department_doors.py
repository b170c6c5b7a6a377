"""A door per department: its topics' names, valid ASCII whatever the department's id, and what
the engine does with a message that comes through a department's answers topic."""

from __future__ import annotations

import json
from typing import Any

import pytest

from consumers.engine import through_door
from dispatch.commands import parse_command
from dispatch.errors import ForgedDepartment, NotAnAnswer
from dispatch.kafka import Topics
from dispatch.kafka.topics import department_slug

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
