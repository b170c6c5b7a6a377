"""What every command shares: the lazily opened runtime, time parsing, output."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import click

from dispatch.bootstrap import Runtime, bootstrap
from dispatch.errors import InvalidCommand, TicketNotFound
from dispatch.projections.records import jsonable

__all__ = ["Ctx", "pass_ctx"]


class Ctx:
    def __init__(self, db_url: str | None, as_json: bool):
        self.db_url, self.as_json = db_url, as_json
        self._runtime: Runtime | None = None

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            self._runtime = bootstrap(self.db_url, create=False)
        return self._runtime

    def close(self) -> None:
        if self._runtime is not None:
            self._runtime.close()
            self._runtime = None

    def catch_up(self) -> None:
        """Bring the read models up to date with the event store (the in-process bus)."""
        from dispatch.projections import catch_up

        catch_up(self.runtime)

    def time(self, value: str | None, option: str = "--at") -> datetime:
        """A business time from ``--at``: ISO-8601; without an offset it is local to the
        reference data's timezone; absent, it is now."""
        if value is None:
            return self.runtime.clock.now()
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidCommand(f"{option} {value!r} is not an ISO-8601 time (e.g. 2026-11-20T09:30+08:00)") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=ZoneInfo(self.runtime.reference.timezone))
        return parsed

    def ticket_id(self, value: str) -> UUID:
        try:
            return UUID(value)
        except ValueError:
            raise TicketNotFound(value) from None

    def emit(self, data: Any, human: Callable[[], None] | str | None = None) -> None:
        if self.as_json or human is None:
            click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=jsonable))
        elif isinstance(human, str):
            click.echo(human)
        else:
            human()


pass_ctx = click.make_pass_decorator(Ctx)
