#!/usr/bin/env python
"""The command line's start-up: `dispatch --help` and the read commands `dispatch show T`,
`tickets` and `dashboard` (on a SQLite database), each beside its floors measured in the same run —
`python -c pass` (the interpreter starting and doing nothing) and `python -c "import sqlalchemy"`
(the target is 1.5× this one). Bytecode is cached as an installed package's is (the run sets
``PYTHONPYCACHEPREFIX`` to a scratch folder and runs each command once first), since
``PYTHONDONTWRITEBYTECODE`` on a development machine would otherwise compile the project's modules
on every start.

    python scripts/bench_cli.py [--n 15]

Prints a table (seconds, median and best of n runs, and the ratio of medians to each floor).
The commands run in rounds — one run of each in turn — so the machine's busy moments fall on
all of them alike. Not a test: nothing here fails the build."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _times(commands: list[list[str]], n: int, cwd: str, env: dict[str, str]) -> list[list[float]]:
    """Each command run n times, in rounds (one run of each, in turn), so a busy moment of the
    machine falls on every command alike; bytecode cached by a first run of each."""
    for argv in commands:
        subprocess.run(argv, check=True, capture_output=True, cwd=cwd, env=env)
    out: list[list[float]] = [[] for _ in commands]
    for _ in range(n):
        for i, argv in enumerate(commands):
            started = time.perf_counter()
            subprocess.run(argv, check=True, capture_output=True, cwd=cwd, env=env)
            out[i].append(time.perf_counter() - started)
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
        named = [("`python -c pass` (floor)", [sys.executable, "-c", "pass"]),
                 ('`python -c "import sqlalchemy"` (floor)', [sys.executable, "-c", "import sqlalchemy"]),
                 ("`dispatch --help`", [dispatch, "--help"]),
                 ("`dispatch show T`", [dispatch, "show", ticket]),
                 ("`dispatch tickets`", [dispatch, "tickets"]),
                 ("`dispatch dashboard --street caojing`", [dispatch, "dashboard", "--street", "caojing"])]
        subprocess.run([dispatch, "tickets"], check=True, capture_output=True, cwd=tmp)  # the report projected
        times = _times([argv for _, argv in named], n, tmp, env)
        rows = [(name, values) for (name, _), values in zip(named, times)]
        floor, alchemy = times[0], times[1]
    f50, a50 = statistics.median(floor), statistics.median(alchemy)
    print("| command | median s | best s | × `pass` | × `import sqlalchemy` |")
    print("|---|---|---|---|---|")
    for name, values in rows:
        m = statistics.median(values)
        print(f"| {name} | {m:.3f} | {min(values):.3f} | {m / f50:.1f} | {m / a50:.2f} |")


if __name__ == "__main__":
    main()
