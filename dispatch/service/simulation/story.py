"""One ticket's story as timed commands: report, first contact or accept, whistle, report-in
or rejection, handling, feedback, evaluation, perhaps a reopen and a second round, close.

Every step comes after the one before it, and every command is legal for the ticket at
that point, so the engine accepts all of them: the tally of what was emitted is exactly
what the engine recorded.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from dispatch.aggregates import ticket_id_for
from dispatch.domain import commands as c
from dispatch.domain.reference import Reference
from dispatch.domain.sla_policy import SlaPolicy
from dispatch.service.simulation.profile import Profile

__all__ = ["Step", "TicketPlan", "ticket_steps"]

_MIN = timedelta(minutes=1)
_MODES = {"patrol": ("on_the_spot",), "video": ("on_the_spot", "forward_and_accept"),
          "hotline": ("tell_the_path", "explain", "accept_on_behalf", "forward_and_accept"),
          "online": ("explain", "tell_the_path", "on_the_spot")}
_METHOD = {"hotline": "callback", "online": "online", "patrol": "in_person", "video": "in_person"}
_TEXT = {
    "city_appearance": ("沿街商铺占道堆放货物", "绿化带内散养家禽", "违规搭建自行车棚出租", "垃圾未及时清运"),
    "road_traffic": ("僵尸车长期占用车位", "路口信号灯故障", "非机动车乱停放堵塞人行道"),
    "public_facilities": ("楼道窗户玻璃破损", "路灯不亮", "窨井盖缺失"),
    "facility_management": ("老旧小区设施待维修", "小区门禁损坏"),
    "sanitation_environment": ("雾霾天露天焚烧垃圾", "河道漂浮垃圾"),
    "construction_transport": ("违法搭建", "夜间施工噪音扰民"),
    "public_utilities": ("小区停水未通知", "路面积水排水不畅"),
    "economy": ("商户无证经营", "价格欺诈投诉"),
}


@dataclass(frozen=True)
class Step:
    at: datetime
    command: Any
    late: bool = False  # an answer or a handling after its deadline
    calls: int = 0  # a dispatch: how many calls it makes
    first: bool = False  # a dispatch: the ticket's first


@dataclass
class TicketPlan:
    """What the arrival process decided about one report."""

    number: int
    at: datetime
    grid: str
    channel: str
    category: str
    priority: str
    steps: list[Step] = field(default_factory=list)


def _lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(sigma * rng.gauss(0.0, 1.0))


class _Story:
    def __init__(self, plan: TicketPlan, reference: Reference, sla: SlaPolicy, profile: Profile,
                 rng: random.Random, prefix: str):
        self.plan, self.ref, self.sla, self.profile, self.rng = plan, reference, sla, profile, rng
        self.prefix = f"{prefix}-{plan.number:07d}"
        self.now = plan.at
        self.n = 0
        self.category = reference.category(plan.category)
        self.rule = reference.sla_rule(plan.category, plan.priority)
        self.basis = sla.basis(self.rule.time_basis)
        self.centre = {"role": "centre", "id": f"centre-duty-{rng.randint(1, 4)}"}
        self.reporter = self._reporter()
        ref_no = f"12345-{prefix}-{plan.number:07d}" if plan.channel == "hotline" else None
        self.ticket_id = ticket_id_for(external_ref=ref_no, channel=plan.channel, command_id=self._id(0))
        self.external_ref = ref_no

    def _reporter(self) -> dict[str, str]:
        p, rng = self.plan, self.rng
        if p.channel in ("patrol", "video"):
            return {"role": "supervisor", "id": f"sup-{p.grid}-{rng.randint(1, 2)}", "grid": p.grid}
        if p.channel == "hotline":
            return {"role": "hotline", "id": f"12345-op-{rng.randint(1, 6)}"}
        return {"role": "resident", "id": f"resident-{rng.randint(1, 99999):05d}"}

    def _id(self, n: int) -> str:
        return f"{self.prefix}-{n:02d}"

    def add(self, at: datetime, cls: type, *, late: bool = False, calls: int = 0, first: bool = False,
            actor: dict[str, str] | None = None, **fields: Any) -> datetime:
        at = max(at, self.now + _MIN) if self.n else at
        self.now = at
        body = {"command_id": self._id(self.n), "occurred_at": at, "actor": actor or self.centre, **fields}
        if cls is not c.Report:
            body["ticket_id"] = self.ticket_id
        self.plan.steps.append(Step(at, cls(**body), late, calls, first))
        self.n += 1
        return at

    def centre_delay(self, median: float) -> timedelta:
        hour = self.now.hour
        night = 1.8 if hour < 7 or hour >= 22 else 1.0
        return timedelta(minutes=max(1.0, _lognormal(self.rng, median * night, 0.6)))

    def dept_delay(self, start: datetime, deadline_minutes: int, late_p: float, median_share: float) -> datetime:
        """An answer or a handling: usually well inside the deadline, sometimes past it."""
        if self.rng.random() < late_p:
            minutes = deadline_minutes * self.rng.uniform(1.1, 3.0)
        else:
            minutes = min(deadline_minutes * 0.95, _lognormal(self.rng, deadline_minutes * median_share, 0.7))
        return self.basis.add_minutes(start, max(1, round(minutes)))

    def dept_actor(self, dept: str) -> dict[str, str]:
        return {"role": "department", "id": f"{dept}-staff-{self.rng.randint(1, 3)}", "department": dept}

    # -------------------------------------------------------------------- the story
    def tell(self) -> None:
        p, profile, rng = self.plan, self.profile, self.rng
        self.add(p.at, c.Report, actor=self.reporter, grid=p.grid, category=p.category, priority=p.priority,
                 channel=p.channel, description=rng.choice(_TEXT.get(p.category, ("模拟上报",))),
                 external_ref=self.external_ref)
        if p.priority == "normal" and rng.random() < profile.first_contact.get(p.channel, 0.0):
            self.add(self.now + self.centre_delay(8), c.FirstContact, mode=rng.choice(_MODES[p.channel]))
            return
        self.add(self.now + self.centre_delay(5), c.Accept)
        wrong = self._wrong_department()
        rounds, reopens = 0, 0
        while True:
            lead = wrong if rounds == 0 and wrong else None
            outcome = self._round(lead, first=rounds == 0)
            rounds += 1
            if outcome == "rejected":
                continue
            satisfaction = self._evaluate()
            if (satisfaction == "unsatisfied" and reopens < profile.max_reopens
                    and rng.random() < profile.reopen_if_unsatisfied):
                reopens += 1
                self.add(self.now + self.centre_delay(30), c.Reopen, reason="群众不满意，返工")
                continue
            # closing an unsatisfactory result without rework takes the centre's override
            override = "群众不满意，经中心研判办结" if satisfaction == "unsatisfied" else ""
            self.add(self.now + self.centre_delay(60), c.Close, note="办结", override=override)
            return

    def _wrong_department(self) -> str | None:
        if self.rng.random() >= self.profile.wrong_department:
            return None
        own = {self.category.lead_department, *self.category.cooperating}
        others = sorted(d for d in self.ref.departments if d not in own)
        return self.rng.choice(others) if others else None

    def _round(self, lead: str | None, first: bool) -> str:
        """One whistle: dispatch, every call answered (or not), the lead handles."""
        dispatched = self.now + self.centre_delay(8)
        if lead is not None:
            departments, cooperating = [lead], []
        else:
            departments = [self.category.lead_department]
            cooperating = [d for d in self.category.cooperating if d != self.category.lead_department]
        departments += cooperating
        cmd: dict[str, Any] = {"lead": lead, "cooperating": [] if lead else None}
        self.add(dispatched, c.Dispatch, calls=len(departments), first=first,
                 reason="" if first else "改派", **cmd)
        ack_due = self.basis.add_minutes(dispatched, self.rule.ack_minutes)
        answers = []
        for i, dept in enumerate(departments):
            if i and self.rng.random() < self.profile.never_answers:
                continue
            at = self.dept_delay(dispatched, self.rule.ack_minutes, self.profile.late_ack, 0.3)
            rejects = lead is not None or (i > 0 and self.rng.random() < self.profile.cooperating_rejects)
            answers.append((at, dept, rejects))
        for at, dept, rejects in sorted(answers):
            actor = self.dept_actor(dept)
            if rejects:
                at = self.add(at, c.Reject, actor=actor, department=dept, reason="不属于本部门职责")
            else:
                at = self.add(at, c.Acknowledge, actor=actor, department=dept)
            self.plan.steps[-1] = Step(at, self.plan.steps[-1].command, at > ack_due)
        if lead is not None:
            return "rejected"
        handle_due = self.basis.add_minutes(dispatched, self.rule.handle_minutes)
        handled = self.dept_delay(dispatched, self.rule.handle_minutes, self.profile.late_handle, 0.35)
        dept = self.category.lead_department
        at = self.add(handled, c.Handle, actor=self.dept_actor(dept), department=dept, result="已处置")
        self.plan.steps[-1] = Step(at, self.plan.steps[-1].command, at > handle_due)
        return "handled"

    def _evaluate(self) -> str:
        profile, rng = self.profile, self.rng
        contacted = rng.random() < profile.contacted
        self.add(self.now + self.centre_delay(40), c.Feedback, message="处置结果已反馈", contacted=contacted)
        satisfaction = rng.choices(list(profile.satisfaction), weights=list(profile.satisfaction.values()))[0]
        resolved = satisfaction != "unsatisfied" or rng.random() < 0.3
        wait = timedelta(minutes=_lognormal(rng, 360, 0.8))
        actor = self.reporter if self.reporter["role"] != "hotline" else {"role": "resident", "id": "12345-callback"}
        self.add(self.now + wait, c.Evaluate, actor=actor, satisfaction=satisfaction, resolved=resolved,
                 contacted=contacted, method=_METHOD.get(self.plan.channel, "callback"))
        return satisfaction


def ticket_steps(plan: TicketPlan, reference: Reference, sla: SlaPolicy, profile: Profile,
                 rng: random.Random, prefix: str) -> list[Step]:
    """The whole story of one reported ticket, steps in business-time order."""
    _Story(plan, reference, sla, profile, rng, prefix).tell()
    return plan.steps
