"""A period's figures from its own tickets equal those from the whole history on PostgreSQL too
(the same comparison as tests/unit/test_windowed_facts.py, on a shorter simulated history)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from dispatch.bootstrap import Runtime, bootstrap
from dispatch.clock import SimulatedClock
from dispatch.simulation import simulate
from dispatch.simulation.runner import run_embedded
from tests.integration.servers import drop_postgres_database, fresh_postgres_database
from tests.unit import test_windowed_facts as windowed
from tests.unit.test_simulation import START

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def history() -> Iterator[Runtime]:
    url = fresh_postgres_database("windowed")
    runtime = bootstrap(url, clock=SimulatedClock(START))
    run_embedded(runtime, simulate(runtime.reference, "xinqi", 10, 40, 5, START), start=START,
                 end=START + timedelta(days=10))
    yield runtime
    runtime.close()
    drop_postgres_database(url)


@pytest.mark.parametrize("question", [(3, 6, 6), (2, 5, 8.5), (0, 10, 10)])
def test_a_periods_figures_equal_the_whole_historys_on_postgres(
        history: Runtime, question: tuple[float, float, float], monkeypatch: pytest.MonkeyPatch) -> None:
    windowed.test_a_periods_figures_from_its_own_tickets_equal_those_from_the_whole_history(
        history, question, monkeypatch)
