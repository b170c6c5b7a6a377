"""A deterministic scenario for the replay tests: tickets in two streets over three
days, taking every path (first contact, rejection and redispatch, evaluation and
reopening, escalation, duplicate, cancellation), plus a sanity test of it."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from dispatch.bootstrap import Runtime, bootstrap
from dispatch.domain.commands import parse_command

__all__ = ["T0", "TZ", "run_scenario", "scenario_commands"]

TZ = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 16, 8, 40, tzinfo=TZ)  # a Monday morning
GRIDS = ["cj-shuiku-g01", "cj-shuiku-g02", "cj-hutang-g01", "cj-ruanxiang-g01", "cj-huayuan-g01",
         "xq-baihe-g01", "xq-baihe-g02"]
CATEGORIES = ["city_appearance", "road_traffic", "public_facilities", "facility_management"]


def _cmd(kind: str, at: datetime, role: str, **fields: Any) -> dict[str, Any]:
    actor: dict[str, Any] = {"role": role, "id": f"{role}-1"}
    if role == "department":
        actor["department"] = fields["department"]
    return {"type": kind, "occurred_at": at.isoformat(), "actor": actor, **fields}


def scenario_commands(n: int = 40, seed: int = 7, *, evaluate_method: str | None = None) -> list[dict[str, Any]]:
    """Commands in business-time order (each ticket's steps never go back in time)."""
    rng = random.Random(seed)
    steps: list[tuple[datetime, int, dict[str, Any]]] = []
    for i in range(n):
        at = T0 + timedelta(minutes=rng.randrange(0, 3 * 24 * 60))
        seq = 0

        def add(minutes: int, cmd: dict[str, Any]) -> None:
            nonlocal at, seq
            at += timedelta(minutes=minutes)
            cmd["occurred_at"] = at.isoformat()
            steps.append((at, i * 100 + seq, cmd))
            seq += 1

        tid_ref = f"12345-{seed}-{i}"
        category = rng.choice(CATEGORIES)
        from dispatch.aggregates import ticket_id_for
        tid = str(ticket_id_for(external_ref=tid_ref, channel="hotline"))
        add(0, _cmd("report", at, "hotline", grid=rng.choice(GRIDS), category=category,
                    priority=rng.choice(["normal", "normal", "urgent"]), channel="hotline",
                    description=f"第{i}号：占道经营、垃圾堆放", external_ref=tid_ref))
        path = rng.random()
        if path < 0.1:
            add(3, _cmd("first_contact", at, "centre", ticket_id=tid, mode="explain"))
            continue
        add(rng.randrange(1, 20), _cmd("accept", at, "centre", ticket_id=tid))
        if path < 0.15:
            add(5, _cmd("cancel", at, "centre", ticket_id=tid, reason="重复上报，撤销"))
            continue
        add(rng.randrange(1, 30), _cmd("dispatch", at, "centre", ticket_id=tid))
        from dispatch.domain.reference import load_reference
        lead = load_reference(None).category(category).lead_department
        if path < 0.3:
            add(rng.randrange(5, 60), _cmd("reject", at, "department", ticket_id=tid, department=lead,
                                           reason="不属于本部门职责"))
            add(rng.randrange(5, 60), _cmd("dispatch", at, "centre", ticket_id=tid, lead="chengguan",
                                           cooperating=[]))
            lead = "chengguan"
        if path < 0.4:
            add(rng.randrange(60, 300), _cmd("escalate", at, "centre", ticket_id=tid, reason="超时未报到"))
        if path < 0.5 and path >= 0.4:
            continue  # left open: overdue as of later instants
        add(rng.randrange(5, 90), _cmd("acknowledge", at, "department", ticket_id=tid, department=lead))
        if path < 0.55:
            continue
        add(rng.randrange(30, 900), _cmd("handle", at, "department", ticket_id=tid, department=lead, result="已清理"))
        add(rng.randrange(10, 120), _cmd("feedback", at, "centre", ticket_id=tid, message="已处理完毕"))
        satisfaction = rng.choice(["satisfied", "basically_satisfied", "unsatisfied"])
        evaluate = _cmd("evaluate", at, "resident", ticket_id=tid, satisfaction=satisfaction,
                        resolved=satisfaction != "unsatisfied", contacted=rng.random() < 0.9, comment="谢谢")
        if evaluate_method is not None:
            evaluate["method"] = evaluate_method
        add(rng.randrange(30, 600), evaluate)
        if satisfaction == "unsatisfied":
            add(rng.randrange(5, 60), _cmd("reopen", at, "centre", ticket_id=tid, reason="群众不满意"))
            add(rng.randrange(5, 60), _cmd("dispatch", at, "centre", ticket_id=tid))
            continue
        add(rng.randrange(5, 120), _cmd("close", at, "centre", ticket_id=tid))
    steps.sort(key=lambda s: (s[0], s[1]))
    return [cmd for _, _, cmd in steps]


def run_scenario(db: str | Path, *, n: int = 40, seed: int = 7, env: dict[str, str] | None = None,
                 **kw: Any) -> Runtime:
    """A database with the scenario recorded (projections not yet caught up)."""
    runtime = bootstrap(str(db), env=env)
    for cmd in scenario_commands(n, seed, **kw):
        runtime.app.execute(parse_command(cmd))
    return runtime


def test_scenario_takes_every_path(tmp_path: Path) -> None:
    runtime = run_scenario(tmp_path / "s.db")
    try:
        types = {n.topic.rsplit(".", 1)[-1] for n in runtime.app.recorder.select_notifications(1, 10_000)}
    finally:
        runtime.close()
    assert {"Reported", "ClosedAtFirstContact", "Cancelled", "Rejected", "Redispatched", "Escalated",
            "Evaluated", "Reopened", "Closed"} <= types
