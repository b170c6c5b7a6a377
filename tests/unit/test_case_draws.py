"""Case numbers drawn by many at once (every engine process and web worker draws from the same
counter rows): each number is given once, and a batch asking for several streets' and days'
numbers gets a run of each. The same stories run on PostgreSQL in
tests/integration/test_case_draws_postgres.py, where the draw is one statement."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from dispatch.bootstrap import Runtime, bootstrap

PREFIXES = ("XINQI-20260105", "CAOJING-20260105", "XINQI-20260106")


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    rt = bootstrap(str(tmp_path / "draws.db"))
    try:
        yield rt
    finally:
        rt.close()


def test_a_batch_gets_a_run_of_numbers_for_each_street_and_day_it_asks_for(runtime: Runtime) -> None:
    numbers = runtime.case_numbers
    assert numbers.reserve({}) == {}
    first = numbers.reserve({PREFIXES[0]: 2, PREFIXES[1]: 1})
    assert first == {PREFIXES[0]: [f"{PREFIXES[0]}-00001", f"{PREFIXES[0]}-00002"],
                     PREFIXES[1]: [f"{PREFIXES[1]}-00001"]}
    then = numbers.reserve({PREFIXES[1]: 3, PREFIXES[0]: 1})
    assert then == {PREFIXES[1]: [f"{PREFIXES[1]}-0000{n}" for n in (2, 3, 4)], PREFIXES[0]: [f"{PREFIXES[0]}-00003"]}


def test_numbers_drawn_by_many_at_once_are_each_given_once_and_none_is_skipped(runtime: Runtime) -> None:
    drawn: list[str] = []
    failed: list[BaseException] = []
    lock = threading.Lock()

    def draw(seed: int) -> None:
        rnd = random.Random(seed)
        try:
            for _ in range(40):
                wanted = {p: rnd.randint(1, 4) for p in rnd.sample(PREFIXES, rnd.randint(1, len(PREFIXES)))}
                got = runtime.case_numbers.reserve(wanted)
                assert {p: len(v) for p, v in got.items()} == wanted
                with lock:
                    drawn.extend(n for run in got.values() for n in run)
        except BaseException as error:  # noqa: BLE001 - reported by the test's thread
            failed.append(error)

    threads = [threading.Thread(target=draw, args=(seed,)) for seed in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not failed, failed[0]
    assert len(drawn) == len(set(drawn)), "a number given twice"
    for prefix in PREFIXES:
        sequences = sorted(int(n.rsplit("-", 1)[1]) for n in drawn if n.rsplit("-", 1)[0] == prefix)
        assert sequences == list(range(1, len(sequences) + 1)), f"{prefix}: a number skipped"
