"""One ``--db`` URL configures both the event store and the read models.

- no setting: ``sqlite:///dispatch.db`` in the working directory (or ``DISPATCH_DB``)
- a path or ``sqlite:///path``: eventsourcing's SQLite recorder + SQLAlchemy on the same file
- ``postgresql://…`` or ``postgresql+psycopg://…``: eventsourcing's PostgreSQL recorder
  + SQLAlchemy with psycopg 3 on the same database

A password never has to be on the command line (where other users see it in the
process list): a PostgreSQL URL without one takes ``DISPATCH_DB_PASSWORD``, or the
first line of the file named by ``DISPATCH_DB_PASSWORD_FILE``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from dispatch.domain.errors import DispatchError

__all__ = ["DEFAULT_DB", "Database", "password_in_url", "resolve_db"]

DEFAULT_DB = "dispatch.db"


@dataclass(frozen=True)
class Database:
    url: URL  # the SQLAlchemy URL for the read models

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    @property
    def display(self) -> str:
        return self.url.render_as_string(hide_password=True)

    def eventstore_env(self) -> dict[str, str]:
        """The environment eventsourcing's persistence module reads."""
        if self.is_sqlite:
            return {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": self.url.database or ":memory:",
                "SQLITE_LOCK_TIMEOUT": "30",
            }
        u = self.url
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": u.database or "dispatch",
            "POSTGRES_HOST": u.host or "127.0.0.1",
            "POSTGRES_PORT": str(u.port or 5432),
            "POSTGRES_USER": u.username or "postgres",
            "POSTGRES_PASSWORD": u.password or "",
            "POSTGRES_POOL_SIZE": "4",
            "POSTGRES_MAX_OVERFLOW": "4",
            "POSTGRES_CONNECT_TIMEOUT": "10",
            "POSTGRES_LOCK_TIMEOUT": "10",
        }
        return env


def resolve_db(value: str | None = None) -> Database:
    """Turn ``--db`` (or ``DISPATCH_DB``, or the default file) into a ``Database``."""
    raw = value or os.environ.get("DISPATCH_DB") or DEFAULT_DB
    if "://" not in raw:
        return Database(make_url("sqlite:///" + str(Path(raw).expanduser().absolute())))
    try:
        url = make_url(raw)
    except (ArgumentError, ValueError):
        raise DispatchError(f"cannot read database URL {raw!r}") from None
    backend = url.get_backend_name()
    if backend == "postgresql":
        try:
            url.port  # noqa: B018 - a malformed port raises here, not later
        except ValueError:
            raise DispatchError(f"cannot read database URL {url.render_as_string(hide_password=True)!r}: "
                                "bad port") from None
        if url.password is None:
            password = _password_from_env()
            if password is not None:
                url = url.set(password=password)
        return Database(url.set(drivername="postgresql+psycopg"))
    if backend == "sqlite":
        if url.database and url.database != ":memory:":
            url = url.set(database=str(Path(url.database).expanduser().absolute()))
        return Database(url)
    raise DispatchError(f"unsupported database {backend!r}: use a SQLite path or a postgresql:// URL")


def _password_from_env() -> str | None:
    if os.environ.get("DISPATCH_DB_PASSWORD"):
        return os.environ["DISPATCH_DB_PASSWORD"]
    name = os.environ.get("DISPATCH_DB_PASSWORD_FILE")
    if not name:
        return None
    try:
        lines = Path(name).read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise DispatchError(f"cannot read DISPATCH_DB_PASSWORD_FILE {name}: {error.strerror}") from None
    return lines[0] if lines else ""


def password_in_url(raw: str) -> bool:
    try:
        return make_url(raw).password not in (None, "")
    except (ArgumentError, ValueError):
        return False
