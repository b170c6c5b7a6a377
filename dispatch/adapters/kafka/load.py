"""Synthetic intake streams for tests and benchmarks: whole ticket lifecycles as
(key, value) intake messages, deterministic for a seed."""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from dispatch.adapters.kafka.wire import intake_key
from dispatch.domain.commands import command_to_json, parse_command
from dispatch.domain.reference import Reference

__all__ = ["LIFECYCLE", "lifecycle_messages", "produce"]

LIFECYCLE = ("report", "accept", "dispatch", "acknowledge", "handle")


def lifecycle_messages(reference: Reference, tickets: int, *, start: datetime, seed: int = 0,
                       tag: str = "load", steps: tuple[str, ...] = LIFECYCLE,
                       category: str | None = None) -> list[tuple[bytes, bytes]]:
    """``tickets`` × ``steps`` commands with command ids ``{tag}-{i}-{step}``, in produce
    order (round by round, so tickets interleave like real traffic)."""
    rng = random.Random(seed)
    grids, categories = sorted(reference.grids), sorted(reference.categories)
    rounds: list[list[tuple[bytes, bytes]]] = [[] for _ in steps]
    for i in range(tickets):
        kind = reference.category(category or rng.choice(categories))
        lead = kind.lead_department
        at = start + timedelta(seconds=i)
        ticket_id = None
        for n, step in enumerate(steps):
            body: dict[str, Any] = {"type": step, "command_id": f"{tag}-{i}-{step}",
                                    "occurred_at": (at + timedelta(minutes=5 * n)).isoformat()}
            if step == "report":
                body |= {"actor": {"role": "supervisor", "id": f"sup-{i % 50}"}, "grid": rng.choice(grids),
                         "category": kind.id, "channel": "patrol", "description": f"case {i}"}
            else:
                body["ticket_id"] = str(ticket_id)
                body["actor"] = {"role": "centre", "id": "centre-1"}
                if step in ("acknowledge", "handle"):
                    body["department"] = lead
                    body["actor"] = {"role": "department", "id": f"{lead}-desk", "department": lead}
            command = parse_command(body)
            key = intake_key(command)
            ticket_id = ticket_id or key.decode()
            rounds[n].append((key, command_to_json(command)))
    return [message for round_ in rounds for message in round_]


def produce(producer: Any, topic: str, messages: Iterable[tuple[bytes | None, bytes | None]]) -> int:
    """Send all, flush, and raise if any send failed."""
    futures = [producer.send(topic, key=key, value=value) for key, value in messages]
    producer.flush(timeout=120)
    for future in futures:
        future.get(timeout=120)
    return len(futures)
