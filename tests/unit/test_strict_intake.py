"""The engine accepts exactly what the published intake schema allows: every
schema-invalid message is refused by the parser the Kafka engine uses (no coercion)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from dispatch.domain.commands import parse_command
from dispatch.domain.errors import InvalidCommand

SCHEMA = json.loads((Path(__file__).parents[2] / "schemas" / "intake-command.schema.json").read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
T = "0b0c5f0e-8d43-5a5e-9a0e-3b8f7f3f2a11"
AT = "2026-03-02T10:05:00+08:00"
CENTRE = {"role": "centre", "id": "中心李"}
DEPT = {"role": "department", "id": "cg-desk-3", "department": "chengguan"}

VALID: list[dict[str, Any]] = [
    {"type": "report", "command_id": "r1", "occurred_at": AT, "actor": {"role": "supervisor", "id": "网格员张"},
     "grid": "cj-shuiku-g01", "category": "city_appearance", "priority": "normal", "channel": "patrol",
     "description": "垃圾焚烧", "location": "北桥", "external_ref": "12345-1"},
    {"type": "accept", "ticket_id": T, "occurred_at": AT, "actor": CENTRE, "note": ""},
    {"type": "first_contact", "ticket_id": T, "occurred_at": AT, "actor": CENTRE, "mode": "explain"},
    {"type": "dispatch", "ticket_id": T, "occurred_at": AT, "actor": CENTRE, "lead": "chengguan",
     "cooperating": ["huanwei"], "reason": ""},
    {"type": "acknowledge", "ticket_id": T, "occurred_at": AT, "actor": DEPT, "department": "chengguan"},
    {"type": "reject", "ticket_id": T, "occurred_at": AT, "actor": DEPT, "department": "chengguan", "reason": "不归我们"},
    {"type": "handle", "ticket_id": T, "occurred_at": AT, "actor": DEPT, "department": "chengguan", "result": "好"},
    {"type": "feedback", "ticket_id": T, "occurred_at": AT, "actor": CENTRE, "message": "", "contacted": True},
    {"type": "evaluate", "ticket_id": T, "occurred_at": AT, "actor": {"role": "resident", "id": "r"},
     "satisfaction": "satisfied", "resolved": True, "contacted": True, "comment": "", "method": "sms"},
    {"type": "reopen", "ticket_id": T, "occurred_at": AT, "actor": CENTRE, "reason": "没修好"},
    {"type": "escalate", "ticket_id": T, "occurred_at": AT, "actor": CENTRE, "deadline": "manual", "rung": 2},
    {"type": "mark_duplicate", "ticket_id": T, "occurred_at": AT, "actor": CENTRE, "original_id": T},
    {"type": "cancel", "ticket_id": T, "occurred_at": AT, "actor": CENTRE, "reason": "误报"},
    {"type": "close", "ticket_id": T, "occurred_at": AT, "actor": CENTRE, "note": ""},
]

WRONG_VALUES: list[Any] = [1700000000, 1, 0, 1.5, True, None, "yes", "", [], {}, "\x1b[31m", "2026-03-02"]


def _mutations() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for example in VALID:
        kind = example["type"]
        out.append((f"{kind}: unknown field", {**example, "surprise": 1}))
        for key in example:
            if key != "type":
                out.append((f"{kind}: without {key}", {k: v for k, v in example.items() if k != key}))
            for value in WRONG_VALUES:
                out.append((f"{kind}: {key}={value!r}", {**example, key: value}))
        for key in example["actor"]:
            for value in WRONG_VALUES:
                out.append((f"{kind}: actor.{key}={value!r}", {**example, "actor": {**example["actor"], key: value}}))
    return out


def test_the_valid_examples_are_valid_on_both_sides() -> None:
    for example in VALID:
        assert not list(VALIDATOR.iter_errors(example)), example["type"]
        parse_command(json.dumps(example).encode())


def test_every_schema_invalid_message_is_refused_by_the_engines_parser() -> None:
    invalid = [(name, doc) for name, doc in _mutations() if list(VALIDATOR.iter_errors(doc))]
    assert len(invalid) > 1000  # the mutations do reach the schema's rules
    accepted = []
    for name, doc in invalid:
        try:
            parse_command(json.dumps(doc).encode())
        except InvalidCommand:
            continue
        accepted.append(name)
    assert accepted == []


@pytest.mark.parametrize("field,value", [("occurred_at", 1700000000), ("resolved", "yes"), ("resolved", 1),
                                         ("contacted", "true"), ("occurred_at", "1700000000")])
def test_the_cases_a_producer_got_wrong_are_refused(field: str, value: Any) -> None:
    evaluate = next(e for e in VALID if e["type"] == "evaluate")
    with pytest.raises(InvalidCommand, match=field):
        parse_command(json.dumps({**evaluate, field: value}).encode())
