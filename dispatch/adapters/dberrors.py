"""Database failures as one sentence naming the database, never a driver's class name."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dispatch.adapters.config import Database
from dispatch.domain.errors import DatabaseUnavailable

__all__ = ["DRIVER_ERRORS", "describe_db_error", "translate_db_errors"]


def _driver_errors() -> tuple[type[BaseException], ...]:
    import sqlalchemy.exc
    from eventsourcing.persistence import PersistenceError

    kinds: list[type[BaseException]] = [sqlalchemy.exc.DBAPIError, sqlalchemy.exc.OperationalError,
                                        sqlite3.Error, PersistenceError]
    psycopg = sys.modules.get("psycopg")  # an error from it means it was imported: a SQLite-only
    if psycopg is not None:                # process never pays for importing it
        kinds.append(psycopg.Error)
    return tuple(kinds)


def __getattr__(name: str) -> Any:
    if name == "DRIVER_ERRORS":  # the drivers' error classes, of the drivers this process loaded
        return _driver_errors()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

_HINTS = {
    "file is not a database": "the file is damaged or not a SQLite database; 'dispatch check' tells more",
    "database disk image is malformed": "the file is damaged; 'dispatch check' tells more",
    "unable to open database file": "the file or its folder cannot be opened (missing folder or no permission)",
    "readonly database": "the file is read-only for this user",
    "database is locked": "another process holds the database; try again",
}


def describe_db_error(error: BaseException) -> str:
    """The driver's own reason, first line, without class names or SQL."""
    inner: Any = getattr(error, "orig", None) or error.__cause__ or error
    text = str(inner).strip().splitlines()
    reason = text[0] if text else "failed"
    if reason.startswith("(") and ")" in reason:  # "(sqlite3.OperationalError) …"
        reason = reason.split(")", 1)[1].strip()
    for needle, hint in _HINTS.items():
        if needle in reason:
            return hint
    return reason


@contextmanager
def translate_db_errors(db: Database) -> Iterator[None]:
    try:
        yield
    except _driver_errors() as error:
        where = db.url.database if db.is_sqlite else db.display
        raise DatabaseUnavailable(f"cannot use the database {where}: {describe_db_error(error)}") from None
