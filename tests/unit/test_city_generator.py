"""The city-scale data set for the read-side benchmark (``dispatch.service.simulation.city``): a short
simulation of every street, laid down week after week through the real projection code."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from dispatch.bootstrap import bootstrap
from dispatch.domain.clock import SimulatedClock
from dispatch.projections import sla_statistics
from dispatch.projections import tables as t
from dispatch.service.simulation import city
from tests.unit.test_simulation import START


def test_copies_of_the_template_are_its_tickets_shifted_week_by_week(tmp_path: Path) -> None:
    runtime = bootstrap(str(tmp_path / "template.db"), clock=SimulatedClock(START))
    template = city.simulate_template(runtime, start=START, days=4, per_day=12, week=2)
    runtime.close()
    assert template.tickets > 20 and {r.type for r in template.records} >= {"Reported", "Dispatched", "Evaluated"}
    target = bootstrap(str(tmp_path / "city.db"))
    laid = city.lay_down(target.engine, template, weeks=3, per_week=2)
    unfinished = len(template.unfinished)
    assert laid == 6 * template.tickets - 4 * unfinished  # only the last week's copies keep the open ones
    with target.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.tickets)).scalar_one() == laid
        numbers = conn.execute(select(func.count(func.distinct(t.tickets.c.case_no)))).scalar_one()
        weekly = {}
        for week in range(3):
            lo = START + timedelta(weeks=week)
            weekly[week] = conn.execute(select(func.count()).select_from(t.tickets).where(
                t.tickets.c.reported_at >= lo, t.tickets.c.reported_at < lo + timedelta(weeks=1))).scalar_one()
    assert numbers == laid  # every copy has its own case numbers
    assert weekly == {0: 2 * (template.tickets - unfinished), 1: 2 * (template.tickets - unfinished),
                      2: 2 * template.tickets}
    # the figures of one copy's week are the template's, whatever week it was laid down in
    first = sla_statistics(target.engine, target.reference, by="department", as_of=START + timedelta(weeks=4),
                           start=START, end=START + timedelta(weeks=1))
    second = sla_statistics(target.engine, target.reference, by="department", as_of=START + timedelta(weeks=4),
                            start=START + timedelta(weeks=1), end=START + timedelta(weeks=2))
    assert sum(r["dispatched"] for r in first["rows"]) > 0
    assert [(r["department"], r["dispatched"], r["answered"]) for r in first["rows"]] == \
        [(r["department"], r["dispatched"], r["answered"]) for r in second["rows"]]
    target.close()
