"""docs/wire-format.md against the code's catalogues: the command types it lists are the
schema's, and its dead-letter table names every refusal the engine can send there."""

from __future__ import annotations

import json
import re
from pathlib import Path

from dispatch.adapters.kafka.schemas import INTAKE_SCHEMA
from dispatch.domain import errors

ROOT = Path(__file__).resolve().parents[2]
WIRE = (ROOT / "docs" / "wire-format.md").read_text(encoding="utf-8")
# codes of the catalogue that never reach the intake's dead letters, and why
NOT_ON_THE_WIRE = {
    "dispatch_error": "the base class", "transition_error": "a base class", "unknown_reference": "a base class",
    "database_error": "a base class", "unauthenticated": "a door's sign-in", "account_locked": "a door's sign-in",
    "unknown_user": "user management", "user_exists": "user management", "command_not_found": "the API's status URL",
    "refused": "the API's wrapper of an engine refusal", "backfill_not_allowed": "a door's rule for people",
    "position_outside_grids": "the doors place positions; the wire names the grid",
    "reference_data_error": "reference files", "would_orphan_tickets": "reference files",
    "database_not_found": "the CLI's databases", "not_a_dispatch_database": "the CLI's databases",
    "database_needs_upgrade": "the CLI's databases", "database_unavailable": "the engine retries, never refuses",
    "unsafe_target": "replay targets", "concurrent_change": "the engine retries its batch",
    "unknown_community": "the wire names grids", "unknown_street": "the wire names grids",
    "unknown_district": "the wire names grids",
    "not_waiting_to_be_placed": "the console places Open311 reports given in words",
}


def _codes() -> set[str]:
    found, stack = set(), [errors.DispatchError]
    while stack:
        cls = stack.pop()
        try:
            found.add(cls.__new__(cls).code)
        except AttributeError:
            found.add(errors._snake(cls.__name__))
        stack.extend(cls.__subclasses__())
    return found


def test_the_command_types_listed_are_the_schemas() -> None:
    schema = json.loads((ROOT / "schemas" / INTAKE_SCHEMA).read_text(encoding="utf-8"))
    types = {v["properties"]["type"]["const"] for v in schema["$defs"].values()
             if "type" in v.get("properties", {}) and "const" in v["properties"]["type"]}
    paragraph = WIRE.split("`type` selects the command:", 1)[1].split("Every command has", 1)[0]
    assert set(re.findall(r"`([a-z_]+)`", paragraph)) == types
    assert len(types) == 18


def test_the_dead_letter_table_names_every_refusal_the_engine_can_send() -> None:
    table = WIRE.split("Codes (`dispatch.error.code`", 1)[1].split("Guarantees:", 1)[0]
    documented = {code for line in table.splitlines() if line.startswith("| `")
                  for code in re.findall(r"`([a-z_]+)`", line.split("|")[1])}
    missing = sorted(_codes() - documented - NOT_ON_THE_WIRE.keys())
    assert missing == []
    assert not (documented & NOT_ON_THE_WIRE.keys()), documented & NOT_ON_THE_WIRE.keys()
