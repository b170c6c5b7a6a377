"""On PostgreSQL: the case-number stories of tests/unit/test_case_draws.py, where a batch's
numbers are drawn in one statement of their own transaction, its rows locked in one order."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dispatch.bootstrap import Runtime
from tests.integration.servers import postgres_runtime
from tests.unit import test_case_draws as stories

pytestmark = pytest.mark.integration
STORIES = [getattr(stories, name) for name in dir(stories) if name.startswith("test_")]


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    with postgres_runtime("draws") as rt:
        yield rt


@pytest.mark.parametrize("story", STORIES, ids=[s.__name__[5:] for s in STORIES])
def test_case_draws_on_postgres(story: Any, runtime: Runtime) -> None:
    story(runtime)
