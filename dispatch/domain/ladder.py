"""The escalation ladder: "small matters stay in the grid, big ones in the street".

A ticket starts at the grid. Supervision (督办) moves it one rung up at a time:
grid → community → street → district. Rung 1 is the community, rung 3 the district.
"""

from __future__ import annotations

from datetime import datetime, timedelta

__all__ = ["LEVELS", "TOP_RUNG", "level_of_rung", "rungs_due"]

LEVELS: tuple[str, ...] = ("grid", "community", "street", "district")
TOP_RUNG = len(LEVELS) - 1


def level_of_rung(rung: int) -> str:
    return LEVELS[rung]


def rungs_due(deadline: datetime, now: datetime, every_minutes: int) -> int:
    """How many rungs a missed deadline has earned by ``now``.

    Missing the deadline earns rung 1 (community) at once; each further
    ``every_minutes`` past it earns the next rung, up to the district.
    """
    if now <= deadline:
        return 0
    if every_minutes <= 0:
        return TOP_RUNG
    steps = (now - deadline) // timedelta(minutes=every_minutes)
    return min(TOP_RUNG, 1 + int(steps))
