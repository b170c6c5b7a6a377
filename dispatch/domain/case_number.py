"""Case numbers (工单编号): their form, and the number of a ticket reported before they existed.

A number is ``<street code>-<report date>-<sequence>``, e.g. ``XINQI-20261012-00042``: the
street's id in capitals (letters and digits; a street id without any gets ``S`` and six hex
digits of its hash), the report's business date in the reference time zone, and a sequence
per street and day (drawn by ``dispatch.adapters.case_register``). Numbers sort by street, then date,
then order of allocation; gaps are allowed.

Tickets reported before case numbers existed get ``legacy_case_no``: the same prefix and
``X`` with the first six hex digits of the ticket id — deterministic, so every reader
(projections, a rebuild, an export) gives the same one.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from uuid import UUID
from zoneinfo import ZoneInfo

__all__ = ["CASE_NO", "case_prefix", "legacy_case_no", "looks_like_case_no", "street_code"]

# A case number as typed: the pattern every door accepts in place of a ticket id.
CASE_NO = r"^[A-Za-z0-9]{1,16}-\d{8}-(\d{5,}|[Xx][0-9a-fA-F]{6})$"
_CASE_NO = re.compile(CASE_NO)


def street_code(street_id: str) -> str:
    code = re.sub(r"[^A-Za-z0-9]", "", street_id).upper()[:16]
    return code or "S" + hashlib.sha256(street_id.encode()).hexdigest()[:6].upper()


def case_prefix(street_id: str, reported_at: datetime, tz: str) -> str:
    try:
        local = reported_at.astimezone(ZoneInfo(tz))
    except OverflowError:  # the first or last day a datetime can hold
        local = reported_at
    return f"{street_code(street_id)}-{_day(local)}"


def _day(at: datetime) -> str:
    return f"{at.year:04d}{at.month:02d}{at.day:02d}"  # strftime's %Y drops a small year's zeros


def legacy_case_no(ticket_id: UUID | str, street_id: str, reported_at: datetime) -> str:
    """The date is the report's in the offset its event carries (every door stamps the
    reference time zone), so no reader needs the reference data to name a ticket."""
    if isinstance(reported_at, str):
        reported_at = datetime.fromisoformat(reported_at)
    return f"{street_code(street_id)}-{_day(reported_at)}-X{str(ticket_id).replace('-', '')[:6].upper()}"


def looks_like_case_no(value: str) -> bool:
    return bool(_CASE_NO.match(value))
