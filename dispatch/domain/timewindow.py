"""The window of business times every door accepts (a pure policy).

A business time before ``earliest`` (default 2000-01-01, UTC) or more than ``tolerance``
past the runtime's clock (default 15 minutes: a phone's clock may run a little ahead) is
refused with ``BusinessTimeOutOfRange``, so no event with a time the figures cannot hold
(year 1, year 9999) ever reaches the store. Tests and simulations pin the clock, so the
window moves with simulated time.

Settings: ``DISPATCH_EARLIEST`` (an ISO-8601 date or time) and
``DISPATCH_FUTURE_TOLERANCE_MINUTES``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from dispatch.domain.errors import BusinessTimeOutOfRange, DispatchError

__all__ = ["DEFAULT_EARLIEST", "DEFAULT_TOLERANCE", "TimeWindow"]

DEFAULT_EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
DEFAULT_TOLERANCE = timedelta(minutes=15)
_MAX_TOLERANCE = timedelta(days=366)


@dataclass(frozen=True)
class TimeWindow:
    earliest: datetime = DEFAULT_EARLIEST
    tolerance: timedelta = DEFAULT_TOLERANCE

    def check(self, at: datetime, now: datetime) -> None:
        if at.tzinfo is None:
            raise BusinessTimeOutOfRange(f"business time {at.isoformat()} has no UTC offset")
        if at < self.earliest:
            raise BusinessTimeOutOfRange(
                f"business time {at.isoformat()} is before {self.earliest.isoformat()}, the earliest accepted")
        latest = now + self.tolerance
        if at > latest:
            minutes = int(self.tolerance.total_seconds() // 60)
            raise BusinessTimeOutOfRange(
                f"business time {at.isoformat()} is in the future: more than {minutes} minutes past "
                f"now ({now.isoformat(timespec='seconds')})")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TimeWindow:
        earliest, tolerance = DEFAULT_EARLIEST, DEFAULT_TOLERANCE
        raw = env.get("DISPATCH_EARLIEST")
        if raw:
            try:
                earliest = datetime.fromisoformat(raw.strip())
            except ValueError:
                raise DispatchError(f"DISPATCH_EARLIEST={raw!r} is not an ISO-8601 date or time") from None
            if earliest.tzinfo is None:
                earliest = earliest.replace(tzinfo=timezone.utc)
        raw = env.get("DISPATCH_FUTURE_TOLERANCE_MINUTES")
        if raw:
            try:
                tolerance = timedelta(minutes=int(raw))
                if not timedelta(0) <= tolerance <= _MAX_TOLERANCE:
                    raise ValueError
            except ValueError:
                raise DispatchError(f"DISPATCH_FUTURE_TOLERANCE_MINUTES={raw!r}: give whole minutes "
                                    f"from 0 to {int(_MAX_TOLERANCE.total_seconds() // 60)}") from None
        return cls(earliest, tolerance)
