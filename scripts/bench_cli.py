#!/usr/bin/env python
"""The command line's start-up: `dispatch --help` and `dispatch show T` (a ticket on a SQLite
database), each beside its floor measured in the same run — `python -c pass`, the interpreter
starting and doing nothing.

    python scripts/bench_cli.py [--n 15]

Prints a table (seconds, median and best of n runs, and the ratio to the floor). Not a test:
nothing here fails the build."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _times(argv: list[str], n: int, cwd: str) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, cwd=cwd)
        out.append(time.perf_counter() - started)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=15)
    n = parser.parse_args().n
    dispatch = str(Path(sys.executable).with_name("dispatch"))
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([dispatch, "init"], check=True, capture_output=True, cwd=tmp)
        ticket = subprocess.run([dispatch, "report", "--grid", "cj-shuiku-g01", "--category", "市容环卫", "-d", "x"],
                                check=True, capture_output=True, text=True, cwd=tmp).stdout.strip()
        floor = _times([sys.executable, "-c", "pass"], n, tmp)
        rows = [("`python -c pass` (floor)", floor),
                ("`dispatch --help`", _times([dispatch, "--help"], n, tmp)),
                ("`dispatch show T`", _times([dispatch, "show", ticket], n, tmp))]
    f50 = statistics.median(floor)
    print("| command | median s | best s | × floor |")
    print("|---|---|---|---|")
    for name, values in rows:
        print(f"| {name} | {statistics.median(values):.3f} | {min(values):.3f} | {statistics.median(values) / f50:.1f} |")


if __name__ == "__main__":
    main()
