"""The ``dispatch`` command line.

Global options: ``--db URL`` (default ``./dispatch.db`` or ``DISPATCH_DB``), ``--json``
for machine-readable output, ``-v`` for log lines. A user error prints one line on
stderr and exits 1 (2 for a usage error); it never prints a traceback.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click
import structlog

from dispatch.cli.context import Ctx
from dispatch.errors import DispatchError
from dispatch.logs import configure_logging

__all__ = ["main", "run"]

# Each module registers its commands on ``main``.
COMMAND_MODULES = (
    "dispatch.cli.tickets",
    "dispatch.cli.views",
    "dispatch.cli.dashboards",
    "dispatch.cli.kafka",
    "dispatch.cli.replay",
    "dispatch.cli.demo",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--db", "db_url", metavar="URL", help="SQLite path or postgresql:// URL [env DISPATCH_DB; default ./dispatch.db]")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")
@click.option("-v", "--verbose", count=True, help="Log lines on stderr (-v info, -vv debug).")
@click.pass_context
def main(ctx: click.Context, db_url: str | None, as_json: bool, verbose: int) -> None:
    """dispatch — grid work orders: report → whistle → report in → handle → feedback → evaluate."""
    level = {0: "WARNING", 1: "INFO"}.get(verbose, "DEBUG")
    configure_logging(level)
    ctx.obj = Ctx(db_url=db_url, as_json=as_json)
    ctx.call_on_close(ctx.obj.close)


for _name in COMMAND_MODULES:
    try:
        importlib.import_module(_name)
    except ModuleNotFoundError as _e:  # a module still being written is simply absent
        if _e.name != _name:
            raise


def _fail(message: str, code: int) -> None:
    click.echo(f"dispatch: error: {message}", err=True)
    sys.exit(code)


def run(argv: list[str] | None = None) -> Any:
    """Console-script entry point: turns every failure into one line on stderr."""
    try:
        return main.main(args=argv, prog_name="dispatch", standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.Abort:
        _fail("aborted", 130)
    except click.UsageError as e:
        hint = f" (see 'dispatch {e.ctx.info_name} --help')" if e.ctx and e.ctx.parent else ""
        _fail(f"{e.format_message()}{hint}", 2)
    except click.ClickException as e:
        _fail(e.format_message(), e.exit_code or 1)
    except DispatchError as e:
        _fail(str(e), 1)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Exception as e:  # noqa: BLE001 - never a traceback for the user
        if os.environ.get("DISPATCH_DEBUG"):
            raise
        structlog.get_logger("dispatch.cli").debug("unexpected", exc_info=True)
        _fail(f"{type(e).__name__}: {_one_line(e)}", 1)
    return None


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
