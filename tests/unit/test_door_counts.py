"""The door's counts (sign-in failures, rate-limit buckets): a process's own (``LocalCounts``)
and the database's (``SharedCounts``, for web workers side by side) give the same answers, and
two workers counting through the database count as one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

from dispatch.adapters.user_tables import SharedCounts
from dispatch.web.guard import LocalCounts, RateLimiter, SignInLimiter


def _at(counts: Any, when: list[float]) -> Any:
    counts.now = lambda: when[0]  # the store's clock, moved by the test
    return counts


@pytest.fixture(params=["local", "shared"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    return LocalCounts() if request.param == "local" else SharedCounts(create_engine(f"sqlite:///{tmp_path / 'd.db'}"))


def test_a_bucket_gives_its_burst_then_one_token_a_second(store: Any) -> None:
    clock = [1_000.0]
    bucket = RateLimiter(60, 3, kind="writes", counts=_at(store, clock))
    assert [bucket.take("desk") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take("desk") == pytest.approx(1.0)
    assert bucket.take("another desk") == 0.0  # a bucket per key
    clock[0] += 0.5
    assert bucket.take("desk") == pytest.approx(0.5)
    clock[0] += 0.5
    assert bucket.take("desk") == 0.0
    assert bucket.take("desk") == pytest.approx(1.0)
    clock[0] += 3600
    assert [bucket.take("desk") for _ in range(4)][-1] == pytest.approx(1.0)  # refilled to the burst, no further


def test_failures_count_wait_longer_each_time_and_are_forgotten(store: Any) -> None:
    clock = [1_000.0]
    guard = SignInLimiter(per_address=3, per_account=2, counts=_at(store, clock), forget=900)
    guard.failed("10.0.0.1", "Boss")
    assert guard.wait("10.0.0.9", "boss") == 0.0
    guard.failed("10.0.0.2", "boss")
    assert guard.wait("10.0.0.9", "BOSS") == pytest.approx(1.0)  # the account's 2 free ones spent (names fold case)
    guard.failed("10.0.0.2", "boss")
    assert guard.wait("10.0.0.9", "boss") == pytest.approx(2.0)  # twice as long as the one before
    guard.succeeded("boss")
    assert guard.wait("10.0.0.9", "boss") == 0.0  # a right password forgets its account's
    for _ in range(2):
        guard.failed("10.0.0.2", "someone")
    assert guard.wait("10.0.0.2", "anyone") == pytest.approx(2.0)  # the address's own 4 (whatever names): 3 free
    clock[0] += 901
    assert guard.wait("10.0.0.2", "anyone") == 0.0
    guard.failed("10.0.0.2", "someone")
    assert guard.wait("10.0.0.2", "anyone") == 0.0  # counted from 1 again after a quiet quarter of an hour


def test_two_workers_count_as_one_through_the_database(tmp_path: Path) -> None:
    url, clock = f"sqlite:///{tmp_path / 'd.db'}", [1_000.0]
    one, two = (_at(SharedCounts(create_engine(url)), clock) for _ in range(2))
    a, b = (RateLimiter(60, 3, kind="writes", counts=counts) for counts in (one, two))
    assert [a.take("desk"), b.take("desk"), a.take("desk")] == [0.0, 0.0, 0.0]
    assert b.take("desk") == pytest.approx(1.0)  # the burst is spent, whichever worker spent it
    guard_a, guard_b = (SignInLimiter(per_address=1, counts=counts) for counts in (one, two))
    guard_a.failed("10.0.0.1", "x")
    assert guard_b.wait("10.0.0.1", "y") == pytest.approx(1.0)


def test_processes_of_their_own_count_alone() -> None:
    a, b = (RateLimiter(60, 1, counts=LocalCounts()) for _ in range(2))
    assert a.take("desk") == 0.0 and b.take("desk") == 0.0
    assert a.take("desk") > 0
