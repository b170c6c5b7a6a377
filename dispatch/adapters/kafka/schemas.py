"""The JSON Schema files in ``schemas/``: the intake one is generated from the command
models (``dispatch schemas``); the others are written by hand next to it."""

from __future__ import annotations

import json
from pathlib import Path

from dispatch.domain.commands import command_json_schema

__all__ = ["INTAKE_SCHEMA", "intake_schema_text", "write_intake_schema"]

INTAKE_SCHEMA = "intake-command.schema.json"


def intake_schema_text() -> str:
    return json.dumps(command_json_schema(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def write_intake_schema(directory: str | Path) -> Path:
    path = Path(directory) / INTAKE_SCHEMA
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(intake_schema_text(), encoding="utf-8")
    return path
