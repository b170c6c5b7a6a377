"""What every command shares: the lazily opened runtime, time parsing, output."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

import click

from dispatch import queries
from dispatch.bootstrap import Runtime, bootstrap
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
        """A business time from ``--at`` and the like (``dispatch.queries.business_time``)."""
        return queries.business_time(self.runtime, value, option)

    def ticket_id(self, value: str) -> UUID:
        return queries.ticket_id(value)

    def emit(self, data: Any, human: Callable[[], None] | str | None = None) -> None:
        if self.as_json or human is None:
            click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=jsonable))
        elif isinstance(human, str):
            click.echo(human)
        else:
            human()


pass_ctx = click.make_pass_decorator(Ctx)
