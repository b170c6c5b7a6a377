"""Event versions: how an old stored event becomes the current shape.

Each event class that changed carries ``class_version = N`` and static methods
``upcast_v1_v2(state)`` … ``upcast_vN-1_vN(state)``; eventsourcing's mapper runs the
chain on read (``Mapper.to_domain_event``), so every reader — the aggregate, the
projections, a rebuild, an export — sees only the current shape. The functions live
here so the same step also upgrades a record from the ticket-events wire that an
older relay published (the wire carries no class version: a missing field tells).

History (keep this list; never edit a published step, add the next one):

- ``Evaluated`` v2: field ``method``, how the verdict was collected — one of
  ``EVALUATION_METHODS``. Before it, the hotline call-back was the only method, so a
  v1 event becomes ``"callback"``.
- ``Handled`` v2: field ``call_id``, the call it answers. A v1 event gets ``None``; the
  lifecycle fold works the call out (the department's call on the current dispatch).
- ``Reported`` v2: fields ``reporter``, the reporter's sealed contact (``dispatch.adapters.vault``),
  and ``media``, the report's photos. A v1 event had neither: ``None``.
- ``Reported`` v3: ``case_no`` (工单编号), the centre's own deadlines ``accept_due`` and
  ``dispatch_due`` in ``centre_basis``, and ``provisional`` (a working-time deadline in a
  year the holiday table does not cover). Before v3 none was recorded: ``None``/``False``
  (the read side gives such a ticket its legacy number, ``dispatch.adapters.case_register``; without
  centre deadlines it counts in neither on-time rate of the centre).
- ``Dispatched`` and ``Redispatched`` v2: ``provisional`` — ``False`` before — and ``calendar``,
  the fingerprint of the holiday table the deadlines were counted with (``None`` before).
  ``Reported`` v3 carries ``calendar`` too.
- ``Escalated`` v2: ``deadlines``, every missed deadline that caused it (supervision is per
  ticket): a v1 event named one, ``[deadline]``.
- ``Reported`` v4: ``position``, where the report was made as data —
  ``{"lat", "lon", "given_in", "accuracy"}``: WGS-84 degrees, the system the position was given
  in (``WGS84`` or ``GCJ02``), the accuracy in metres the phone gave (or ``None``). Before v4 a
  placed report kept its position only in ``location`` as ``"<lat>,<lon> (WGS-84)"`` (after an
  ``" @ "`` when the reporter also typed a place): that text is parsed back (``given_in`` unknown:
  ``None``, accuracy ``None``); any other location gives ``None``.
- ``Closed`` v2: ``override``, the centre's reason for closing a result the reporter found
  unsatisfactory or unresolved; ``None`` before (no override existed).
"""

from __future__ import annotations

import re
from collections.abc import Callable, MutableMapping
from dataclasses import replace
from typing import Any

__all__ = ["CURRENT_VERSIONS", "EVALUATION_METHODS", "upcast_closed_v1_v2", "upcast_data", "upcast_dispatched_v1_v2",
           "upcast_escalated_v1_v2", "upcast_evaluated_v1_v2", "upcast_from", "upcast_handled_v1_v2", "upcast_record",
           "upcast_reported_v1_v2", "upcast_reported_v2_v3", "upcast_reported_v3_v4", "position_in_text"]

EVALUATION_METHODS = ("callback", "sms", "online", "in_person")

State = MutableMapping[str, Any]


def upcast_evaluated_v1_v2(state: State) -> None:
    """Evaluated v1 → v2: the verdict was collected by the hotline call-back."""
    state.setdefault("method", "callback")


def upcast_handled_v1_v2(state: State) -> None:
    """Handled v1 → v2: the call is not named (``dispatch.domain.lifecycle.fold`` works it out)."""
    state.setdefault("call_id", None)


def upcast_reported_v1_v2(state: State) -> None:
    """Reported v1 → v2: no reporter contact and no photos were recorded."""
    state.setdefault("reporter", None)
    state.setdefault("media", None)


def upcast_reported_v2_v3(state: State) -> None:
    """Reported v2 → v3: no case number, no centre deadlines, nothing provisional."""
    for key in ("case_no", "accept_due", "dispatch_due", "centre_basis", "calendar"):
        state.setdefault(key, None)
    state.setdefault("provisional", False)


_IN_TEXT = re.compile(r"(?:^| @ )(-?\d{1,2}\.\d+),(-?\d{1,3}\.\d+) \(WGS-84\)$")


def position_in_text(location: str | None) -> dict[str, Any] | None:
    """The position an old report kept in its location text (``"30.123456,120.123456 (WGS-84)"``,
    alone or after ``" @ "``), as a v4 ``position``; None when the text holds none."""
    found = _IN_TEXT.search(location or "")
    if found is None:
        return None
    lat, lon = float(found.group(1)), float(found.group(2))
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return {"lat": lat, "lon": lon, "given_in": None, "accuracy": None}


def upcast_reported_v3_v4(state: State) -> None:
    """Reported v3 → v4: the position, parsed from the location text where it was kept."""
    state.setdefault("position", position_in_text(state.get("location")))


def upcast_dispatched_v1_v2(state: State) -> None:
    """Dispatched / Redispatched v1 → v2: every deadline came from a covered year; the holiday
    table it was counted with is not known."""
    state.setdefault("provisional", False)
    state.setdefault("calendar", None)


def upcast_escalated_v1_v2(state: State) -> None:
    """Escalated v1 → v2: the one deadline it named."""
    state.setdefault("deadlines", [state.get("deadline", "manual")])


def upcast_closed_v1_v2(state: State) -> None:
    """Closed v1 → v2: no override."""
    state.setdefault("override", None)


# event type -> (current class version, the steps in order, each with the field it adds)
_CHAINS: dict[str, tuple[int, list[tuple[str, Callable[[State], None]]]]] = {
    "Evaluated": (2, [("method", upcast_evaluated_v1_v2)]),
    "Handled": (2, [("call_id", upcast_handled_v1_v2)]),
    "Reported": (4, [("reporter", upcast_reported_v1_v2), ("case_no", upcast_reported_v2_v3),
                     ("position", upcast_reported_v3_v4)]),
    "Dispatched": (2, [("provisional", upcast_dispatched_v1_v2)]),
    "Redispatched": (2, [("provisional", upcast_dispatched_v1_v2)]),
    "Escalated": (2, [("deadlines", upcast_escalated_v1_v2)]),
    "Closed": (2, [("override", upcast_closed_v1_v2)]),
}
CURRENT_VERSIONS = {name: version for name, (version, _) in _CHAINS.items()}


def upcast_from(event_type: str, data: State, version: int) -> None:
    """Bring one stored event's data from its class ``version`` to the current shape in place:
    the steps after that version, in order (what eventsourcing's mapper runs through the class's
    ``upcast_vN_vN+1`` methods, which call these same functions)."""
    chain = _CHAINS.get(event_type)
    if chain is not None:
        for _, step in chain[1][version - 1:]:
            step(data)


def upcast_data(event_type: str, data: State) -> bool:
    """Bring one event's data (without a class version) to the current shape in place:
    a step runs when the field it adds is missing. Returns whether anything changed."""
    chain = _CHAINS.get(event_type)
    if chain is None:
        return False
    changed = False
    for field, step in chain[1]:
        if field not in data:
            step(data)
            changed = True
    return changed


def upcast_record(record: Any) -> Any:
    """The record (a ``dispatch.projections.records.EventRecord``) in the current shape (the
    same object when it already is)."""
    if record.type not in _CHAINS:
        return record
    data = dict(record.data)
    return replace(record, data=data) if upcast_data(record.type, data) else record
