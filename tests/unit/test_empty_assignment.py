"""A consumer with no partition says so and rejoins its group, at growing intervals, and says
when it has partitions again (``consumers.base``): driven with a consumer that the group leaves
empty, and a clock the test moves."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

with warnings.catch_warnings():  # kafka-python's import-time DeprecationWarning
    warnings.simplefilter("ignore", DeprecationWarning)
    from consumers import base
    from consumers.metrics import ProcessHealth


class Group:
    """What the group gives the member: nothing, until told otherwise; counts its joins."""

    def __init__(self) -> None:
        self.assigned: set[Any] = set()
        self.joins = 0

    def assignment(self) -> set[Any]:
        return self.assigned

    def unsubscribe(self) -> None:
        pass

    def subscribe(self, topics: list[str], listener: Any = None) -> None:
        self.joins += 1


class Member(base.PartitionedConsumer):
    def stored_position(self, tp: Any) -> int | None:
        return None

    def process(self, tp: Any, records: list[Any]) -> None:
        pass


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(base.time, "monotonic", lambda: now[0])
    return now


def _member(clock: list[float]) -> tuple[Member, Group, ProcessHealth]:
    member = Member.__new__(Member)
    group, health = Group(), ProcessHealth("engine")
    member.consumer, member.health, member.group, member.topics = group, health, "g", ["intake"]
    member.owned = {}
    member._empty_since, member._rejoin_every = clock[0], base.EMPTY_AFTER
    member._next_rejoin = clock[0] + base.EMPTY_AFTER
    return member, group, health


def test_an_empty_member_says_so_and_rejoins_ever_more_rarely(clock: list[float]) -> None:
    member, group, health = _member(clock)
    joins_at = []
    for _ in range(400):  # 400 s, a look every second
        clock[0] += 1
        before = group.joins
        member._watch_assignment()
        if group.joins > before:
            joins_at.append(clock[0] - 1000)
    assert joins_at[:4] == [15, 45, 105, 225]  # after 15 s, then 30, 60, 120 s later
    assert health.down["partitions"] == "no partitions for 400 s"


def test_partitions_again_clear_the_readiness_line(clock: list[float]) -> None:
    member, group, health = _member(clock)
    clock[0] += 20
    member._watch_assignment()
    assert "partitions" in health.down and group.joins == 1
    group.assigned = {("intake", 0)}
    clock[0] += 1
    member._watch_assignment()
    assert "partitions" not in health.down
