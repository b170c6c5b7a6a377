"""The bulk writer converts times itself (no dialect lookup per value): it must store exactly what
``UtcDateTime`` stores, in every zone, on both sides of a daylight-saving change."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from dispatch.adapters.database import UtcDateTime
from dispatch.projections.writer import _pg_time, _sqlite_time


class _Dialect:
    def __init__(self, name: str):
        self.name = name


BERLIN, NEW_YORK, SHANGHAI = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York"), ZoneInfo("Asia/Shanghai")
TIMES = [
    datetime(2025, 9, 22, 0, 1, 27, tzinfo=timezone(timedelta(hours=8))),  # as events carry them
    datetime(2025, 9, 22, 0, 1, 27, 123456, tzinfo=timezone.utc),
    datetime(2025, 9, 22, 0, 1, 27, tzinfo=SHANGHAI),
    datetime(2025, 10, 26, 2, 30, tzinfo=BERLIN, fold=0),  # the hour that happens twice
    datetime(2025, 10, 26, 2, 30, tzinfo=BERLIN, fold=1),
    datetime(2025, 3, 9, 2, 30, tzinfo=NEW_YORK),  # the hour that never happens
    datetime(2025, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-3, minutes=-30))),
]


@pytest.mark.parametrize("at", TIMES, ids=lambda at: f"{at.isoformat()}/{at.tzinfo}/{at.fold}")
def test_the_writer_stores_a_time_as_the_column_type_would(at: datetime) -> None:
    column = UtcDateTime()
    assert _pg_time(at) == column.process_bind_param(at, _Dialect("postgresql"))
    assert _sqlite_time(at) == column.process_bind_param(at, _Dialect("sqlite"))
    # the same instant (PEP 495: aware times in a fold or a gap never compare equal across zones)
    assert _pg_time(at).replace(tzinfo=timezone.utc).timestamp() == at.timestamp()  # type: ignore[union-attr]


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        _pg_time(datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="naive datetime"):
        _sqlite_time(datetime(2025, 1, 1))
