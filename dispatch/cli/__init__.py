"""The ``dispatch`` command line.

Global options: ``--db URL`` (default ``./dispatch.db`` or ``DISPATCH_DB``), ``--json``
for machine-readable output, ``-v`` for log lines. A user error prints one line on
stderr and exits 1 (2 for a usage error); it never prints a traceback or an exception
class. With ``--json`` the error is a JSON object on stderr:
``{"error": {"code": "ticket_not_found", "message": "…"}}`` (codes: docs/errors.md).
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import threading
from typing import Any

import click
import structlog

from dispatch.cli.context import Ctx
from dispatch.errors import DispatchError
from dispatch.logs import configure_logging

__all__ = ["main", "run"]

# Each module registers its commands on ``main``.
COMMAND_MODULES = (
    "dispatch.cli.database",
    "dispatch.cli.reference",
    "dispatch.cli.tickets",
    "dispatch.cli.views",
    "dispatch.cli.dashboards",
    "dispatch.cli.kafka",
    "dispatch.cli.replay",
    "dispatch.cli.demo",
    "dispatch.cli.users",
    "dispatch.cli.web",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--db", "db_url", metavar="URL", help="SQLite path or postgresql:// URL [env DISPATCH_DB; default ./dispatch.db]")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")
@click.option("-v", "--verbose", count=True, help="Log lines on stderr (-v info, -vv debug).")
@click.option("--as", "as_user", metavar="USER", envvar="DISPATCH_USER",
              help="Act as this registered user, with its role and scope [env DISPATCH_USER; "
                   "default: you, the local operator, as an admin].")
@click.pass_context
def main(ctx: click.Context, db_url: str | None, as_json: bool, verbose: int, as_user: str | None) -> None:
    """dispatch — grid work orders: report → whistle → report in → handle → feedback → evaluate."""
    level = {0: "WARNING", 1: "INFO"}.get(verbose, "DEBUG")
    configure_logging(level)
    _STATE["as_json"], _STATE["db_url"] = as_json, db_url
    if db_url and "://" in db_url:
        from dispatch.config import password_in_url

        if password_in_url(db_url):
            click.echo("dispatch: warning: a password in --db is visible to other users in the process list; "
                       "set DISPATCH_DB or DISPATCH_DB_PASSWORD_FILE instead", err=True)
    ctx.obj = Ctx(db_url=db_url, as_json=as_json, as_user=as_user)
    ctx.call_on_close(ctx.obj.close)


_STATE: dict[str, Any] = {"as_json": False, "db_url": None}


def _database_named() -> str:
    from dispatch.config import resolve_db

    try:
        db = resolve_db(_STATE["db_url"])
    except DispatchError:
        return "the database"
    return f"the database {db.url.database if db.is_sqlite else db.display}"


for _name in COMMAND_MODULES:
    try:
        importlib.import_module(_name)
    except ModuleNotFoundError as _e:  # a module still being written is simply absent
        if _e.name != _name:
            raise


def _terminated(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _fail(message: str, code: int, error_code: str) -> None:
    message = " ".join(message.split())  # one line, whatever the message held
    if _STATE["as_json"]:
        click.echo(json.dumps({"error": {"code": error_code, "message": message}}, ensure_ascii=False), err=True)
    else:
        click.echo(f"dispatch: error: {message}", err=True)
    sys.exit(code)


def run(argv: list[str] | None = None) -> Any:
    """Console-script entry point: turns every failure into one line on stderr."""
    args = sys.argv[1:] if argv is None else argv
    if threading.current_thread() is threading.main_thread():
        # SIGTERM unwinds like Ctrl-C, so scratch folders and incomplete markers are tidied up
        signal.signal(signal.SIGTERM, _terminated)
    _STATE["as_json"] = "--json" in args[: args.index("--") if "--" in args else len(args)]
    try:
        return main.main(args=argv, prog_name="dispatch", standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.Abort:
        _fail("aborted", 130, "interrupted")
    except click.UsageError as e:
        hint = f" (see 'dispatch {e.ctx.info_name} --help')" if e.ctx and e.ctx.parent else ""
        _fail(f"{e.format_message()}{hint}", 2, "usage")
    except click.ClickException as e:
        _fail(e.format_message(), e.exit_code or 1, "usage")
    except DispatchError as e:
        _fail(str(e), 1, e.code)
    except KeyboardInterrupt:
        _fail("interrupted", 130, "interrupted")
    except Exception as e:  # noqa: BLE001 - never a traceback for the user
        if os.environ.get("DISPATCH_DEBUG"):
            raise
        structlog.get_logger("dispatch.cli").debug("unexpected", exc_info=True)
        from dispatch.dberrors import DRIVER_ERRORS, describe_db_error

        if isinstance(e, DRIVER_ERRORS):
            _fail(f"{_database_named()} failed: {describe_db_error(e)}", 1, "database_unavailable")
        _fail(f"unexpected problem: {_one_line(e)} (DISPATCH_DEBUG=1 shows where)", 1, "internal_error")
    return None


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else "no details"
