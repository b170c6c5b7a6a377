"""The README's tour runs as printed: its first ``bash`` block, top to bottom, in a fresh folder,
each command with bash's ``set -euo pipefail`` — a command the README shows that fails, fails
this test."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def _tour() -> str:
    after = README.read_text(encoding="utf-8").split("## A tour", 1)[1]
    found = re.search(r"```bash\n(.*?)```", after, re.S)
    assert found, "the README has no bash block after '## A tour'"
    return found.group(1)


def test_the_readme_tour_runs_as_printed(tmp_path: Path) -> None:
    script = tmp_path / "tour.sh"
    script.write_text("set -euo pipefail\n" + _tour(), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCH_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # this environment's dispatch
    ran = subprocess.run(["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "Closed at 2026-11-20T11:10:00+08:00" in ran.stdout
    assert "case number CAOJING-20261120-00001" in ran.stderr
    with open(tmp_path / "tickets.csv", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2  # the tour's two tickets
    assert (tmp_path / "rebuilt.db").exists() and (tmp_path / "then.db").exists()
