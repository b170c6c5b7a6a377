"""The door's counts (sign-in failures, rate-limit buckets) kept in the database: two web
workers counting through it count as one."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine

from dispatch.users import SharedCounts
from dispatch.web.guard import LocalCounts, RateLimiter, SignInLimiter


class _Frozen:
    """A store whose clock stands still (a bucket does not refill between two asks)."""

    def __init__(self, inner: object, at: float):
        self.inner, self.at = inner, at

    def now(self) -> float:
        return self.at

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_two_workers_draw_from_one_bucket_through_the_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'd.db'}"
    one, two = (_Frozen(SharedCounts(create_engine(url)), 1_000.0) for _ in range(2))
    a, b = (RateLimiter(60, 3, kind="writes", counts=counts) for counts in (one, two))
    assert [a.take("desk"), b.take("desk"), a.take("desk")] == [0.0, 0.0, 0.0]
    assert b.take("desk") == 1.0  # the burst of 3 is spent, whichever worker spent it: one a second
    assert b.take("other desk") == 0.0


def test_sign_in_failures_add_up_across_workers_and_a_right_password_forgets_the_account(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'd.db'}"
    one, two = (_Frozen(SharedCounts(create_engine(url)), 1_000.0) for _ in range(2))
    a, b = (SignInLimiter(per_address=3, per_account=2, counts=counts) for counts in (one, two))
    a.failed("10.0.0.1", "Boss")
    b.failed("10.0.0.2", "boss")
    assert a.wait("10.0.0.9", "BOSS") == 1.0  # the account's 2 free failures are spent (names fold case)
    b.succeeded("boss")
    assert a.wait("10.0.0.9", "boss") == 0.0
    for _ in range(2):
        b.failed("10.0.0.1", "someone")
    assert a.wait("10.0.0.1", "anyone") == 1.0  # the address's 3 free ones: 1 from a, 2 from b


def test_a_process_of_its_own_counts_alone() -> None:
    a, b = (RateLimiter(60, 1, counts=LocalCounts()) for _ in range(2))
    assert a.take("desk") == 0.0 and b.take("desk") == 0.0
    assert a.take("desk") > 0
