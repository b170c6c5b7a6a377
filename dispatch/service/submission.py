"""Kafka mode for a door: hand an authorized command to the intake topic and answer with its
outcome, which the engine writes to the command log (``dispatch.adapters.outcome_log``) in the same
transaction as the events it caused. This process never writes the event store.

- applied → the ticket, the event and the new version (a read after it sees the write: the
  events were committed with the log row);
- refused → the engine's error, with its code (``Refused``);
- no outcome within ``wait`` seconds → pending, with the command id to ask again.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from dispatch.adapters import outcome_log
from dispatch.domain.commands import command_to_json
from dispatch.domain.errors import CommandNotFound, Refused
from dispatch.domain.identity import Identity

__all__ = ["KafkaSubmitter", "result_of"]

DEFAULT_WAIT = 5.0


def result_of(row: dict[str, Any], *, replayed: bool = False) -> dict[str, Any]:
    """An applied row as the API answers it; a refused row raises ``Refused``."""
    if row["outcome"] == "refused":
        raise Refused(row["message"] or "refused", row["code"])
    return {"ticket_id": row["ticket_id"], "event": row["event"], "version": row["version"],
            "occurred_at": row["occurred_at"], "received_at": row["received_at"], "command_id": row["command_id"],
            "outcome": "replayed" if replayed else "applied"}


class KafkaSubmitter:
    def __init__(self, runtime: Any, *, wait: float = DEFAULT_WAIT, poll: float = 0.02):
        from dispatch.adapters.kafka import make_producer

        self.runtime, self.wait, self.poll = runtime, wait, poll
        self.settings = runtime.kafka
        outcome_log.ensure_table(runtime.engine)
        self.producer = make_producer(self.settings, linger_ms=0)
        self.pending: dict[str, str] = {}  # command id -> sender, for commands sent and not yet answered

    def submit(self, command: Any) -> dict[str, Any]:
        from dispatch.adapters.kafka.wire import intake_key

        if not command.command_id:  # every API command gets an id: its outcome is found by it
            command = command.model_copy(update={"command_id": f"api-{uuid.uuid4().hex}"})
        found = outcome_log.lookup(self.runtime.engine, command.command_id)
        if found is not None:  # the same idempotency key again
            return result_of(found, replayed=True)
        self.producer.send(self.settings.topics.intake, key=intake_key(command),
                           value=command_to_json(command)).get(timeout=30)
        deadline = time.monotonic() + self.wait
        while time.monotonic() < deadline:
            found = outcome_log.lookup(self.runtime.engine, command.command_id)
            if found is not None:
                return result_of(found)
            time.sleep(self.poll)
        if len(self.pending) > 100_000:
            self.pending.clear()
        self.pending[command.command_id] = command.actor.id
        return {"command_id": command.command_id, "outcome": "pending",
                "status_url": f"/api/commands/{command.command_id}"}

    def lookup(self, command_id: str, who: Identity) -> dict[str, Any]:
        """A command's outcome, for the identity that sent it (or an admin)."""
        found = outcome_log.lookup(self.runtime.engine, command_id)
        sender = found["actor_id"] if found is not None else self.pending.get(command_id)
        if sender is None or (sender != who.name and who.role != "admin"):
            raise CommandNotFound(f"no command {command_id} of yours was sent here")
        if found is None:
            return {"command_id": command_id, "outcome": "pending", "status_url": f"/api/commands/{command_id}"}
        self.pending.pop(command_id, None)
        return result_of(found)

    def ready(self) -> str:
        """"ok" if a bootstrap broker accepts a connection now."""
        from dispatch.adapters.kafka.clients import broker_answers

        return "ok" if broker_answers(self.settings) else "broker unreachable"

    def close(self) -> None:
        self.producer.close(timeout=5)
