"""The figures computed in the database equal the Python reference's on PostgreSQL too (the same
comparison as tests/unit/test_figures_in_sql.py, on a shorter simulated history)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from dispatch.bootstrap import Runtime, bootstrap
from dispatch.domain.clock import SimulatedClock
from dispatch.service.simulation import simulate
from dispatch.service.simulation.runner import run_embedded
from tests.integration.servers import drop_postgres_database, fresh_postgres_database
from tests.unit import test_figures_in_sql as in_sql
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


@pytest.mark.parametrize("question", [(3, 6, 6), (2, 5, 8.5), (0, 10, 10), (None, None, 7.3)])
def test_every_figure_computed_in_postgres_equals_the_python_reference(
        history: Runtime, question: tuple[float | None, float | None, float]) -> None:
    in_sql.compare(history, question)


def test_rolled_up_figures_equal_the_raw_rows_exactly_on_postgres(history: Runtime,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from dispatch.projections import rollups, sla_stats

    monkeypatch.setattr(rollups, "MIN_PREFIX", timedelta(days=1))  # a short history: every run of days

    end = START + timedelta(days=10)
    built = rollups.roll_up(history.engine, history.reference.timezone, end)
    assert built.days == 10 and built.weeks == 1  # its first week summed too, and read below
    for s, e, a in ((0, 10, 10), (0, 7, 9), (1, 5, 4.5), (0, None, 10)):
        start, as_of = START + timedelta(days=s), START + timedelta(days=a)
        stop = START + timedelta(days=e) if e is not None else None
        for by in ("department", "community"):
            for period in (None, "week", "day"):
                ask = {"by": by, "period": period, "as_of": as_of, "start": start, "end": stop}
                fast = sla_stats.sla_statistics(history.engine, history.reference, **ask)
                raw = sla_stats.sla_statistics(history.engine, history.reference, use_rollups=False, **ask)
                assert fast == raw, ask


def test_postgresql_reads_a_rolled_up_groups_percentiles_off_where_they_sit(history: Runtime) -> None:
    """A rolled-up group no raw row reaches gets its p50 and p90 from PostgreSQL alone (8 bytes
    each): the same values as the nearest ranks taken here, for every count of values."""
    import random
    import struct

    import numpy as np
    from sqlalchemy import LargeBinary, literal, select

    from dispatch.projections import measures, rollups

    draw = random.Random(7)
    with history.engine.connect() as conn:
        for n in range(1, 64):
            ordered = np.sort(np.array([draw.uniform(0, 600) for _ in range(n)], dtype=np.float64))
            picked = conn.execute(select(rollups.nearest_ranks(literal(ordered.tobytes(), LargeBinary), literal(n))
                                         )).scalar_one()
            k50, k90 = measures.ranks(n)
            assert struct.unpack("=dd", bytes(picked)) == (ordered[k50], ordered[k90]), n
