"""``dispatch users``: identities for the HTTP API, managed by the local operator (or a
``--as`` admin). Passwords are read from a prompt or ``--password-stdin``, never from argv."""

from __future__ import annotations

import sys

import click

from dispatch.cli import main
from dispatch.cli.context import Ctx, pass_ctx
from dispatch.domain.identity import ROLES
from dispatch.service import accounts

__all__: list[str] = []


@main.group()
def users() -> None:
    """Users, API tokens and the audit log (who may do what: docs/security.md)."""


def _password(prompt: bool, from_stdin: bool) -> str | None:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    if prompt:
        return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))
    return None


@users.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--scope", metavar="[KIND:]ID[,ID…]",
              help="What the role is bound to, by id or name: grid:/community: (supervisor), district: (hotline), "
                   "street:/district: (dispatcher, leader), department: (department).")
@click.option("--password", "prompt", is_flag=True, help="Ask for a password (for signing in on the web).")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@pass_ctx
def add(ctx: Ctx, name: str, role: str, scope: str | None, prompt: bool, password_stdin: bool) -> None:
    """Add a user. The first admin is made here, by whoever holds the database."""
    who = accounts.add(ctx.runtime, ctx.identity(), name=name, role=role, scope=scope,
                       password=_password(prompt, password_stdin))
    ctx.emit({"name": who.name, "role": who.role, "scope_kind": who.scope_kind, "scope": list(who.scope)},
             f"added {who.describe()}")


@users.command("list")
@pass_ctx
def list_(ctx: Ctx) -> None:
    """Every user, with role, scope and state."""
    rows = accounts.list_all(ctx.runtime, ctx.identity())

    def human() -> None:
        for r in rows:
            state = "disabled" if r["disabled"] else "active"
            scope = f"{r['scope_kind']}:{','.join(r['scope'])}" if r["scope"] else "-"
            click.echo(f"{r['name']}\t{r['role']}\t{scope}\t{state}")

    ctx.emit(rows, human)


@users.command()
@click.argument("name")
@pass_ctx
def disable(ctx: Ctx, name: str) -> None:
    """Disable a user: its tokens stop working at once."""
    accounts.disable(ctx.runtime, ctx.identity(), name)
    ctx.emit({"name": name, "disabled": True}, f"disabled {name}")


@users.command()
@click.argument("name")
@pass_ctx
def enable(ctx: Ctx, name: str) -> None:
    """Enable a disabled user again."""
    accounts.disable(ctx.runtime, ctx.identity(), name, disabled=False)
    ctx.emit({"name": name, "disabled": False}, f"enabled {name}")


@users.command()
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@pass_ctx
def password(ctx: Ctx, name: str, password_stdin: bool) -> None:
    """Set a user's password (and lift a sign-in lock)."""
    accounts.set_password(ctx.runtime, ctx.identity(), name, _password(True, password_stdin) or "")
    ctx.emit({"name": name}, f"password set for {name}")


@users.command()
@click.argument("name")
@click.option("--days", type=float, default=90, show_default=True, help="Days until it expires.")
@click.option("--label", default="", help="What it is for (a field app, an Open311 client…).")
@pass_ctx
def token(ctx: Ctx, name: str, days: float, label: str) -> None:
    """Issue an API token for a user. It is shown once: store it now."""
    issued = accounts.issue_token(ctx.runtime, ctx.identity(), name, days=days, label=label)
    ctx.emit({"id": issued.id, "token": issued.text, "expires_at": issued.expires_at.isoformat()}, issued.text)


@users.command()
@click.argument("name")
@click.option("--machines", is_flag=True, help="End its API tokens made for programs too.")
@pass_ctx
def signout(ctx: Ctx, name: str, machines: bool) -> None:
    """Sign a user out everywhere: every session its password made (pages, API sign-ins) ends now."""
    ended = accounts.sign_out_everywhere(ctx.runtime, ctx.identity(), name, machines=machines)
    ctx.emit({"name": name, "ended": ended, "machines": machines},
             f"{name}: {ended} session{'s' if ended != 1 else ''} ended" + (" (API tokens too)" if machines else ""))


@users.command()
@click.argument("name")
@pass_ctx
def sessions(ctx: Ctx, name: str) -> None:
    """A user's live sessions (made by its password: pages and API sign-ins)."""
    rows = accounts.sessions(ctx.runtime, ctx.identity(), name)

    def human() -> None:
        for r in rows:
            click.echo(f"{r['id']}\t{r['label']}\tsince {r['created_at']:%Y-%m-%d %H:%M}\t"
                       f"until {r['expires_at']:%Y-%m-%d %H:%M}")

    ctx.emit(rows, human)


@users.command()
@click.argument("name", required=False)
@pass_ctx
def tokens(ctx: Ctx, name: str | None) -> None:
    """API tokens (never their secrets), of one user or all."""
    rows = accounts.tokens(ctx.runtime, ctx.identity(), name)

    def human() -> None:
        for r in rows:
            state = "revoked" if r["revoked_at"] else f"expires {r['expires_at']:%Y-%m-%d}"
            click.echo(f"{r['id']}\t{r['user_name']}\t{state}\t{r['label']}")

    ctx.emit(rows, human)


@users.command()
@click.option("--street", required=True, help="The street (id or name) whose big screen it opens.")
@click.option("--days", type=float, default=365, show_default=True, help="Days until it expires.")
@click.option("--label", default="", help="Where the screen hangs (e.g. 街道指挥中心大屏).")
@pass_ctx
def screen(ctx: Ctx, street: str, days: float, label: str) -> None:
    """A read-only link for a street's big screen (大屏). Shown once: open it on the screen."""
    issued = accounts.issue_display_token(ctx.runtime, ctx.identity(), street, days=days, label=label)
    path = f"/screen?key={issued.text}"
    ctx.emit({"id": issued.id, "token": issued.text, "path": path, "expires_at": issued.expires_at.isoformat()},
             f"{path}\n(open it under the web address of `dispatch web`; revoke with `dispatch users revoke {issued.id}`)")


@users.command()
@pass_ctx
def screens(ctx: Ctx) -> None:
    """Big-screen links (never their secrets)."""
    rows = accounts.display_tokens(ctx.runtime, ctx.identity())

    def human() -> None:
        for r in rows:
            state = "revoked" if r["revoked_at"] else f"expires {r['expires_at']:%Y-%m-%d}"
            click.echo(f"{r['id']}\t{r['street']}\t{state}\t{r['label']}")

    ctx.emit(rows, human)


@users.command()
@click.argument("token_id")
@pass_ctx
def revoke(ctx: Ctx, token_id: str) -> None:
    """Revoke an API token (the part after dsp_) or a big-screen link (after dsd_) by its id."""
    accounts.revoke(ctx.runtime, ctx.identity(), token_id)
    ctx.emit({"id": token_id, "revoked": True}, f"revoked {token_id}")


@users.command()
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@pass_ctx
def audit(ctx: Ctx, limit: int) -> None:
    """The newest entries of the audit log: sign-ins, refusals, user changes."""
    rows = accounts.audit_log(ctx.runtime, ctx.identity(), limit)

    def human() -> None:
        for r in rows:
            click.echo(f"{r['at']:%Y-%m-%d %H:%M:%S}\t{r['who']}\t{r['action']}\t{r['outcome']}\t{r['detail']}")

    ctx.emit(rows, human)


@main.group()
def reporters() -> None:
    """Reporters' personal data (name, phone, e-mail for the call-back)."""


@reporters.command("erase")
@click.option("--phone", help="The reporter's phone number.")
@click.option("--email", help="The reporter's e-mail.")
@pass_ctx
def erase(ctx: Ctx, phone: str | None, email: str | None) -> None:
    """Erase a reporter's personal data on request: unreadable everywhere, figures unchanged."""
    erased = accounts.erase_reporter(ctx.runtime, ctx.identity(), phone=phone, email=email)
    ctx.emit({"erased_keys": erased}, f"erased {erased} reporter key(s)" if erased else "no reporter with that contact")
