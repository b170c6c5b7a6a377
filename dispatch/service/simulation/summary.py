"""The demo's result: the simulation's tally, what the engine did, the dashboard and SLA
figures, and a check that the figures agree with what the simulation intended."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from dispatch.domain.reference import Reference
from dispatch.projections import sla_statistics, street_dashboard
from dispatch.service.simulation.tally import SimulationTally

__all__ = ["agreement", "figures"]


def figures(engine: Engine, reference: Reference, street: str, start: datetime, end: datetime) -> dict[str, Any]:
    """The street dashboard and the SLA table by department for ``[start, end)``, as of ``end``."""
    return {
        "dashboard": street_dashboard(engine, reference, street, as_of=end, start=start, end=end),
        "sla": sla_statistics(engine, reference, by="department", as_of=end, start=start, end=end),
    }


def agreement(tally: SimulationTally, escalations: int, result: dict[str, Any]) -> list[dict[str, Any]]:
    """Each figure the dashboards show beside what the simulation (or the watchdog) did."""
    dash, rows = result["dashboard"], result["sla"]["rows"]
    t = tally.as_dict()
    pairs = [
        ("reported", t["reported"], dash["reported"]),
        ("closed", t["closed"], dash["closed"]),
        ("evaluated", t["evaluated"], dash["evaluated"]),
        ("satisfied", t["satisfaction"]["satisfied"], dash["satisfied"]),
        ("basically_satisfied", t["satisfaction"]["basically_satisfied"], dash["basically_satisfied"]),
        ("unsatisfied", t["satisfaction"]["unsatisfied"], dash["unsatisfied"]),
        ("reopened", t["tickets_reopened"], dash["reopened"]),
        ("calls", t["calls"], sum(r["dispatched"] for r in rows)),
        ("rejections", t["rejections"], sum(r["rejected"] for r in rows)),
        ("escalations (watchdog)", escalations, dash["escalations"]),
    ]
    return [{"figure": name, "simulation": want, "dashboard": got, "agree": want == got} for name, want, got in pairs]
