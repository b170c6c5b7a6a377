#!/usr/bin/env python
"""The command line's start-up: `dispatch --help` and the read commands `dispatch show T`,
`tickets` and `dashboard` (on a SQLite database), each beside its floors measured in the same run —
`python -c pass` (the interpreter starting and doing nothing) and `python -c "import sqlalchemy"`
(the target is 1.5× this one). Bytecode is cached as an installed package's is (the run sets
``PYTHONPYCACHEPREFIX`` to a scratch folder and runs each command once first), since
``PYTHONDONTWRITEBYTECODE`` on a development machine would otherwise compile the project's modules
on every start.

    python scripts/bench_cli.py [--n 15]

Prints a table (seconds, median and best of n runs, and the ratio to the floor). Not a test:
nothing here fails the build."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _times(argv: list[str], n: int, cwd: str, env: dict[str, str]) -> list[float]:
    subprocess.run(argv, check=True, capture_output=True, cwd=cwd, env=env)  # bytecode cached first
    out = []
    for _ in range(n):
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, cwd=cwd, env=env)
        out.append(time.perf_counter() - started)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=15)
    n = parser.parse_args().n
    dispatch = str(Path(sys.executable).with_name("dispatch"))
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        subprocess.run([dispatch, "init"], check=True, capture_output=True, cwd=tmp)
        ticket = subprocess.run([dispatch, "report", "--grid", "cj-shuiku-g01", "--category", "市容环卫", "-d", "x"],
                                check=True, capture_output=True, text=True, cwd=tmp).stdout.strip()
        floor = _times([sys.executable, "-c", "pass"], n, tmp, env)
        alchemy = _times([sys.executable, "-c", "import sqlalchemy"], n, tmp, env)
        rows = [("`python -c pass` (floor)", floor), ('`python -c "import sqlalchemy"` (floor)', alchemy),
                ("`dispatch --help`", _times([dispatch, "--help"], n, tmp, env)),
                ("`dispatch show T`", _times([dispatch, "show", ticket], n, tmp, env)),
                ("`dispatch tickets`", _times([dispatch, "tickets"], n, tmp, env)),
                ("`dispatch dashboard --street caojing`", _times([dispatch, "dashboard", "--street", "caojing"], n,
                                                                 tmp, env))]
    f50, a50 = statistics.median(floor), statistics.median(alchemy)
    print("| command | median s | best s | × `pass` | × `import sqlalchemy` |")
    print("|---|---|---|---|---|")
    for name, values in rows:
        m = statistics.median(values)
        print(f"| {name} | {m:.3f} | {min(values):.3f} | {m / f50:.1f} | {m / a50:.2f} |")


if __name__ == "__main__":
    main()
