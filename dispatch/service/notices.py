"""Who hears what (the policy of ``dispatch.service.notifier``): from one ticket event, or one deadline
about to fall due, the notices to send — to whom, what they say, and whether quiet hours may
hold them.

- a whistle call (``Dispatched``, ``Redispatched``) → each department called;
- a report-in or handling deadline ``remind_minutes`` ahead (10 by default, per category) →
  the department whose deadline it is;
- an escalation (``Escalated``, 督办) → the level it reached: that community's, street's or
  district's own channels (``level``, e.g. a street office's group robot) and its people — a
  community's supervisors, a street's or a district's dispatchers and leaders;
- an extension request → the grid centre: the street's channels and the dispatchers of the
  ticket's street and district;
- a reopened ticket (返工) → its lead department.

A notice is short and Chinese: the case number, the category, the place (grid and community),
the deadline in local time and a link to the ticket's page. It never carries the reporter's
name, phone or e-mail, and of the description only the first 60 characters, with the phone
numbers, ID-card numbers and e-mail addresses people typed masked as the exports mask them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dispatch.adapters.vault import scrub

__all__ = ["DEFAULT_REMIND_MINUTES", "Notice", "for_event", "quiet_until", "reminder"]

DEFAULT_REMIND_MINUTES = 10
_LEVEL = {"grid": "网格", "community": "社区", "street": "街道", "district": "区"}
# who supervises at a level: (role, scope kind) pairs
_SUPERVISE = {"community": (("supervisor", "community"),),
              "street": (("dispatcher", "street"), ("leader", "street")),
              "district": (("dispatcher", "district"), ("leader", "district"))}


@dataclass(frozen=True)
class Notice:
    """One message for one recipient: ``("department", id)``, ``("user", name)`` or ``("level",
    "<community|street|district>:<id>")``; ``key`` is
    unique per cause and recipient (the channel is added when it is queued); ``basis``: the time
    basis of what it is about (``working``: quiet hours may hold it)."""

    key: str
    recipient: tuple[str, str]
    subject: str
    body: str
    ticket_id: str
    link: str
    basis: str


def _local(moment: Any, tz: ZoneInfo) -> str:
    if moment is None:
        return "—"
    when = moment if isinstance(moment, datetime) else datetime.fromisoformat(str(moment))
    return when.astimezone(tz).strftime("%m-%d %H:%M")


def short(text: str | None, limit: int = 60) -> str:
    """The first ``limit`` characters of free text, masked (``vault.scrub``): what a notice may quote."""
    clean = " ".join((scrub(text or "") or "").split())
    return clean if len(clean) <= limit else clean[:limit] + "…"


class _Ticket:
    """What a notice says of a ticket (from its aggregate)."""

    def __init__(self, ticket: Any, ref: Any, base_url: str):
        self.id, self.ref = str(ticket.id), ref
        self.case = ticket.case_no or str(ticket.id)[:8]
        self.category = ref.categories[ticket.category].name if ticket.category in ref.categories else ticket.category
        place = ref.place(ticket.grid) if ticket.grid in ref.grids else None
        self.place = f"{place.street.name} {place.community.name} {place.grid.name}" if place else ticket.grid
        self.description = short(ticket.description)
        self.link = f"{base_url.rstrip('/')}/tickets/{ticket.id}"
        self.tz = ZoneInfo(ref.timezone)
        self.street, self.district, self.community = ticket.street, ticket.district, ticket.community
        self.lead = getattr(ticket, "lead", None)

    def department(self, key: str) -> str:
        found = self.ref.departments.get(key)
        return found.name if found else key

    def body(self, first: str, *more: str) -> str:
        return "\n".join([first, f"案件：{self.case}（{self.category}）", f"地点：{self.place}",
                          f"描述：{self.description}", *more, f"查看：{self.link}"])


def for_event(event: Any, position: int, ticket: Any, ref: Any, users: list[dict[str, Any]], base_url: str,
              basis: str) -> list[Notice]:
    """The notices one stored event causes (``position``: its place in the store's feed)."""
    name = type(event).__name__
    t = _Ticket(ticket, ref, base_url)

    def notice(recipient: tuple[str, str], subject: str, body: str, why: str = name, basis_: str = basis) -> Notice:
        return Notice(f"{position}:{why}:{recipient[0]}:{recipient[1]}", recipient, subject, body, t.id, t.link,
                      basis_)

    if name in ("Dispatched", "Redispatched"):
        out = []
        for call in event.calls:
            role = "主办" if call["role"] == "lead" else "协办"
            more = [f"处置时限：{_local(event.handle_due, t.tz)}"] if call["role"] == "lead" else []
            out.append(notice(("department", call["department"]),
                              f"【吹哨】{t.department(call['department'])}{role}：{t.case} {t.category}",
                              t.body(f"新派单（{role}）：请在 {_local(call.get('ack_due'), t.tz)} 前报到", *more),
                              basis_=event.time_basis))
        return out
    if name == "Escalated":
        level = event.to_level
        where = {"community": t.community, "street": t.street, "district": t.district}.get(level)
        wanted = _SUPERVISE.get(level, ())
        people = [u["name"] for u in users if not u.get("disabled") and (u["role"], u["scope_kind"]) in wanted
                  and where in (u.get("scope") or ())]
        recipients = [("level", f"{level}:{where}"), *(("user", person) for person in people)]
        return [notice(recipient, f"【督办·{_LEVEL.get(level, level)}】{t.case} {t.category}",
                       t.body(f"已升级到{_LEVEL.get(level, level)}级督办：{_missed(event, t)}"))
                for recipient in recipients]
    if name == "ExtensionRequested":
        centre = [u["name"] for u in users if not u.get("disabled") and u["role"] == "dispatcher"
                  and ({t.street, t.district} & set(u.get("scope") or ()))]
        hours = round(event.minutes / 60, 1)
        recipients = [("level", f"street:{t.street}"), *(("user", person) for person in centre)]
        return [notice(recipient, f"【延期申请】{t.case} {t.category}",
                       t.body(f"{t.department(event.department)}申请延期 {hours} 小时：{short(event.reason)}"))
                for recipient in recipients]
    if name == "Reopened" and t.lead:
        return [notice(("department", t.lead), f"【返工】{t.department(t.lead)}：{t.case} {t.category}",
                       t.body(f"群众不满意或问题未解决，请返工：{short(event.reason)}"))]
    return []


def _missed(event: Any, t: _Ticket) -> str:
    """What an escalation is for, in words: the deadlines it names (``accept``, ``dispatch``,
    ``ack:<n>:<department>``, ``handle:<n>``)."""
    said = []
    for key in getattr(event, "deadlines", None) or [event.deadline]:
        kind, _, rest = str(key).partition(":")
        if kind == "ack":
            said.append(f"{t.department(rest.partition(':')[2])}报到超时")
        else:
            said.append({"accept": "受理超时", "dispatch": "派遣超时", "handle": "处置超时"}.get(kind, kind))
    return "、".join(dict.fromkeys(said))


def reminder(deadline: Any, ticket: Any, ref: Any, base_url: str, minutes_left: float) -> Notice | None:
    """The reminder of a report-in (``ack``) or handling (``handle``) deadline about to fall due,
    for the department whose deadline it is (a ``MissedDeadline`` row of a later instant)."""
    if deadline.kind not in ("ack", "handle") or not deadline.department:
        return None
    t = _Ticket(ticket, ref, base_url)
    what = "报到" if deadline.kind == "ack" else "处置"
    due = _local(deadline.due, t.tz)
    return Notice(f"remind:{deadline.ticket_id}:{deadline.kind}:{deadline.call_id}:{deadline.due.isoformat()}",
                  ("department", deadline.department),
                  f"【{what}提醒】{t.department(deadline.department)}：{t.case} {what}时限 {due}",
                  t.body(f"{what}时限 {due}，还有约 {max(1, round(minutes_left))} 分钟"),
                  t.id, t.link, deadline.time_basis or "calendar")


def quiet_until(now: datetime, basis: str, calendar: Any) -> datetime | None:
    """When a notice about a working-time deadline may wake someone: None if now (working hours,
    or a calendar-time matter); else the start of the next working period."""
    if basis != "working":
        return None
    if calendar.minutes_between(now, now + timedelta(minutes=1)) > 0:
        return None
    return calendar.add_minutes(now, 1) - timedelta(minutes=1)
