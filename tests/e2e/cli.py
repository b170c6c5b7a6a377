"""Run the real ``dispatch`` command line in a subprocess, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


class Cli:
    def __init__(self, cwd: Path, db: str | None = None, env: dict[str, str] | None = None):
        self.cwd, self.db = cwd, db
        self.env = {**os.environ, "PYTHONIOENCODING": "utf-8", **(env or {})}
        self.env.pop("DISPATCH_DB", None)

    def __call__(self, *args: str, check: bool = True, timeout: float = 120) -> Result:
        argv = [sys.executable, "-m", "dispatch"] + (["--db", self.db] if self.db else []) + list(args)
        p = subprocess.run(argv, cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=timeout)
        result = Result(p.returncode, p.stdout, p.stderr)
        if check and p.returncode != 0:
            raise AssertionError(f"dispatch {' '.join(args)} failed ({p.returncode}): {p.stderr}")
        return result
