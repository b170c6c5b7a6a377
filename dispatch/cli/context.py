"""What every command shares: the lazily opened runtime, time parsing, output."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

import click

from dispatch.bootstrap import Runtime, bootstrap
from dispatch.domain.errors import InvalidCommand
from dispatch.domain.identity import Identity
from dispatch.projections.records import jsonable
from dispatch.service import queries

__all__ = ["Ctx", "pass_ctx"]


class Ctx:
    def __init__(self, db_url: str | None, as_json: bool, as_user: str | None = None):
        self.db_url, self.as_json, self.as_user = db_url, as_json, as_user
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
        """A business time from ``--at`` and the like (``dispatch.service.queries.business_time``)."""
        return queries.business_time(self.runtime, value, option)

    def identity(self, by: str | None = None) -> Identity:
        """Who acts: the ``--as`` user (``--by`` then refused: the actor is that user), else the
        local operator as an admin, named by ``--by`` or ``local:<os user>``."""
        from dispatch.service import accounts  # the users' tables: only for commands that act or --as

        if self.as_user:
            if by is not None:
                raise InvalidCommand("--by: not with --as (the actor is the user you act as)")
            return accounts.identity_of(self.runtime, self.as_user)
        return accounts.local_operator(by)

    @property
    def viewer(self) -> Identity | None:
        """Whose reads these are: the ``--as`` user, else None (the local operator sees everything)."""
        if not self.as_user:
            return None
        from dispatch.service import accounts

        return accounts.identity_of(self.runtime, self.as_user)

    def ticket_id(self, value: str) -> UUID:
        return queries.resolve_ticket(self.runtime, value)

    def emit(self, data: Any, human: Callable[[], None] | str | None = None) -> None:
        if self.as_json or human is None:
            click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=jsonable))
        elif isinstance(human, str):
            click.echo(human)
        else:
            human()


pass_ctx = click.make_pass_decorator(Ctx)
