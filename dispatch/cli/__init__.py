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

from dispatch.cli.catalogue import COMMANDS
from dispatch.domain.errors import DispatchError

__all__ = ["main", "run"]

# Each module registers its commands on ``main`` when it is imported: only the one a command
# line names (``dispatch --help`` reads ``catalogue.COMMANDS`` and imports none).
COMMAND_MODULES = tuple(sorted({module for module, _ in COMMANDS.values()}))


class _Lazy(click.Group):
    """A group whose commands are imported when they are used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            importlib.import_module(COMMANDS[cmd_name][0])
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        rows = [(name, click.Command(name, help=text).get_short_help_str(limit))
                for name, (_, text) in sorted(COMMANDS.items())]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def load_all() -> None:
    """Import every command module (tests and tools that walk all commands)."""
    for name in COMMAND_MODULES:
        importlib.import_module(name)


@click.group(cls=_Lazy, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--db", "db_url", metavar="URL", help="SQLite path or postgresql:// URL [env DISPATCH_DB; default ./dispatch.db]")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")
@click.option("-v", "--verbose", count=True, help="Log lines on stderr (-v info, -vv debug).")
@click.option("--as", "as_user", metavar="USER", envvar="DISPATCH_USER",
              help="Act as this registered user, with its role and scope [env DISPATCH_USER; "
                   "default: you, the local operator, as an admin].")
@click.pass_context
def main(ctx: click.Context, db_url: str | None, as_json: bool, verbose: int, as_user: str | None) -> None:
    """dispatch — grid work orders: report → whistle → report in → handle → feedback → evaluate."""
    from dispatch.adapters.logs import configure_logging
    from dispatch.cli.context import Ctx

    level = {0: "WARNING", 1: "INFO"}.get(verbose, "DEBUG")
    configure_logging(level)
    _STATE["as_json"], _STATE["db_url"] = as_json, db_url
    if db_url and "://" in db_url:
        from dispatch.adapters.config import password_in_url

        if password_in_url(db_url):
            click.echo("dispatch: warning: a password in --db is visible to other users in the process list; "
                       "set DISPATCH_DB or DISPATCH_DB_PASSWORD_FILE instead", err=True)
    ctx.obj = Ctx(db_url=db_url, as_json=as_json, as_user=as_user)
    ctx.call_on_close(ctx.obj.close)


_STATE: dict[str, Any] = {"as_json": False, "db_url": None}


def _database_named() -> str:
    from dispatch.adapters.config import resolve_db

    try:
        db = resolve_db(_STATE["db_url"])
    except DispatchError:
        return "the database"
    return f"the database {db.url.database if db.is_sqlite else db.display}"



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
    options = args[: args.index("--") if "--" in args else len(args)]
    _STATE["as_json"] = "--json" in options
    if _STATE["as_json"]:  # `dispatch sla … --json` as well as `dispatch --json sla …`
        args = ["--json"] + [a for i, a in enumerate(args) if not (a == "--json" and i < len(options))]
    try:
        return main.main(args=args, prog_name="dispatch", standalone_mode=False)
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
        from dispatch.adapters.logs import get_logger

        get_logger("dispatch.cli").debug("unexpected", exc_info=True)
        from dispatch.adapters.dberrors import DRIVER_ERRORS, describe_db_error

        if isinstance(e, DRIVER_ERRORS):
            _fail(f"{_database_named()} failed: {describe_db_error(e)}", 1, "database_unavailable")
        _fail(f"unexpected problem: {_one_line(e)} (DISPATCH_DEBUG=1 shows where)", 1, "internal_error")
    return None


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else "no details"
