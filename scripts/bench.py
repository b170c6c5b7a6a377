#!/usr/bin/env python
"""dispatch benchmarks: each figure beside a floor measured in the same run.

    scripts/bench.py                       everything, full sizes
    scripts/bench.py --quick               smaller sizes (minutes, not tens of minutes)
    scripts/bench.py --only rebuild-sqlite,demo

Benchmarks: demo, rebuild-sqlite, rebuild-postgres, memory (no Kafka); intake, latency,
scale-out (Kafka). Servers: ``scripts/pg-local start`` (PostgreSQL on 127.0.0.1:55432;
override with BENCH_POSTGRES_URL) and ``scripts/kafka-local start`` (127.0.0.1:19092;
BENCH_KAFKA). Every run uses fresh databases and unique topic prefixes.

Writes ``bench-results/latest.json`` (and a timestamped copy) and the table in
``docs/benchmarks.md``. Not a test: nothing here fails the build.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench.common import REPO, Result, load, machine  # noqa: E402
from bench.report import markdown  # noqa: E402

Bench = Callable[[bool], Result]


def _benches() -> dict[str, Bench]:
    from bench.embedded import bench_demo, bench_memory, bench_rebuild_postgres, bench_rebuild_sqlite
    from bench.kafka import bench_intake, bench_latency, bench_scale_out

    return {"intake": bench_intake, "rebuild-sqlite": bench_rebuild_sqlite, "rebuild-postgres": bench_rebuild_postgres,
            "latency": bench_latency, "memory": bench_memory, "scale-out": bench_scale_out, "demo": bench_demo}


def main() -> int:
    from dispatch.adapters.logs import configure_logging

    configure_logging("WARNING")
    benches = _benches()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(benches)} (also: rebuild = both)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--out", default=str(REPO / "bench-results" / "latest.json"))
    parser.add_argument("--doc", default=str(REPO / "docs" / "benchmarks.md"), help="markdown table ('' to skip)")
    args = parser.parse_args()
    chosen = list(benches)
    if args.only:
        wanted = {w.strip() for w in args.only.split(",") if w.strip()}
        if "rebuild" in wanted:
            wanted |= {"rebuild-sqlite", "rebuild-postgres"}
            wanted.discard("rebuild")
        unknown = wanted - set(benches)
        if unknown:
            parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
        chosen = [name for name in benches if name in wanted]
    run = {"started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "quick": args.quick,
           "machine": machine(), "results": []}
    for name in chosen:
        print(f"bench {name} …", file=sys.stderr, flush=True)
        began = time.perf_counter()
        try:
            result = benches[name](args.quick).as_dict()
        except Exception as error:  # noqa: BLE001 - one failed benchmark must not lose the others
            traceback.print_exc()
            result = Result(name, name, "", None, "", None, None, "", None,
                            notes=f"failed: {type(error).__name__}: {error}"[:500]).as_dict()
        result["wall_seconds"] = round(time.perf_counter() - began, 1)
        run["results"].append(result)
        print(f"  {name}: {result['value']} {result['unit']} (floor {result['floor']}, ratio {result['ratio']}) "
              f"passed={result['passed']}", file=sys.stderr, flush=True)
    run["machine"]["load_average_at_end"] = load()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(out.read_text()) if out.exists() and args.only else None
    if previous:  # a partial run keeps the other benchmarks' latest figures
        kept = [r for r in previous.get("results", []) if r["name"] not in {x["name"] for x in run["results"]}]
        run["results"] = sorted(kept + run["results"], key=lambda r: list(benches).index(r["name"])
                                if r["name"] in benches else 99)
        run["partial_runs"] = previous.get("partial_runs", []) + [run["started_at"]]
        run["started_at"] = previous["started_at"]
    text = json.dumps(run, ensure_ascii=False, indent=2)
    out.write_text(text + "\n")
    stamp = run["started_at"].replace(":", "").replace("-", "")[:15]
    (out.parent / f"run-{stamp}.json").write_text(text + "\n")
    if args.doc:
        Path(args.doc).write_text(markdown(run))
    print(f"wrote {out}" + (f" and {args.doc}" if args.doc else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
