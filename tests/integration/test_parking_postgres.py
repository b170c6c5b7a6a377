"""On PostgreSQL: every parking story of tests/unit/test_parking.py (parked in the batch's
transaction, woken in order, given up when the ticket ends, bounded, swept), on the production
store, whose transactions run in pipeline mode."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.servers import postgres_runtime
from tests.unit import test_parking as stories

pytestmark = pytest.mark.integration
STORIES = [getattr(stories, name) for name in dir(stories) if name.startswith("test_")]


@pytest.fixture
def engine() -> Iterator[Any]:
    with postgres_runtime("parking") as runtime:
        yield stories.Engine(runtime)


@pytest.mark.parametrize("story", STORIES, ids=[s.__name__[5:] for s in STORIES])
def test_parking_on_postgres(story: Any, engine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    if "monkeypatch" in story.__code__.co_varnames[:story.__code__.co_argcount]:
        story(engine, monkeypatch)
    else:
        story(engine)
