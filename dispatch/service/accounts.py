"""User management as a use case: who may manage users (``dispatch.service.access``: admins and
the local operator), scopes given by name or id and resolved against the reference data,
times from the runtime's clock. The CLI's ``dispatch users`` and the API call these."""

from __future__ import annotations

from typing import Any

from dispatch.adapters import user_tables
from dispatch.domain.errors import InvalidCommand, UnknownUser
from dispatch.domain.identity import SCOPE_KINDS, Identity
from dispatch.service.access import may_view

__all__ = ["add", "audit_log", "disable", "erase_reporter", "identity_of", "issue_token", "list_all", "local_operator", "revoke",
           "set_password", "tokens"]


def local_operator(by: str | None = None) -> Identity:
    """The person at the CLI: they hold the database itself, so they act as an admin, under
    their own name (``--by``) or ``local:<os user>``."""
    import getpass

    if by is not None and not by.strip():
        raise InvalidCommand("--by: give the name of who does it (or leave the option out)")
    if by is None:
        try:
            by = f"local:{getpass.getuser()}"
        except Exception:  # noqa: BLE001 - no user name in some containers
            by = "local:operator"
    return Identity(name=by, role="admin", kind="local")


def identity_of(runtime: Any, name: str) -> Identity:
    """A registered, enabled user, for the CLI's ``--as`` (the local operator needs no password)."""
    for row in user_tables.list_users(runtime.engine):
        if row["name"] == name:
            if row["disabled"]:
                raise UnknownUser(f"{name} is disabled")
            return Identity(name=name, role=row["role"], scope_kind=row["scope_kind"], scope=tuple(row["scope"]),
                            kind="local")
    raise UnknownUser(f"no user named {name} (see 'dispatch users list')")


def _scope(runtime: Any, role: str, scope: str | None) -> tuple[str | None, list[str]]:
    kinds = SCOPE_KINDS.get(role)
    if kinds is None:
        raise InvalidCommand(f"--role: give one of {', '.join(SCOPE_KINDS)}")
    if not scope:
        return None, []
    kind, _, names = scope.partition(":")
    if not names:
        kind, names = (kinds[0] if kinds else ""), scope
    if kind not in kinds:
        raise InvalidCommand(f"--scope: a {role} is bound to " + (" or ".join(kinds) if kinds else "nothing"))
    ref = runtime.reference
    lookup = {"grid": ref.grid, "community": ref.community, "street": ref.street, "district": ref.district,
              "department": ref.department}[kind]
    return kind, [lookup(n.strip()).id for n in names.split(",") if n.strip()]


def add(runtime: Any, by: Identity, *, name: str, role: str, scope: str | None, password: str | None) -> Identity:
    may_view(by, "users")
    kind, ids = _scope(runtime, role, scope)
    return user_tables.add_user(runtime.engine, runtime.clock.now(), name=name, role=role, scope_kind=kind, scope=ids,
                          password=password, by=by.name)


def list_all(runtime: Any, by: Identity) -> list[dict[str, Any]]:
    may_view(by, "users")
    return user_tables.list_users(runtime.engine)


def disable(runtime: Any, by: Identity, name: str, disabled: bool = True) -> None:
    may_view(by, "users")
    user_tables.set_disabled(runtime.engine, runtime.clock.now(), name, disabled, by=by.name)


def set_password(runtime: Any, by: Identity, name: str, password: str) -> None:
    may_view(by, "users")
    user_tables.set_password(runtime.engine, runtime.clock.now(), name, password, by=by.name)


def issue_token(runtime: Any, by: Identity, name: str, *, days: float = user_tables.TOKEN_DAYS,
                label: str = "") -> user_tables.Token:
    if by.name != name:
        may_view(by, "users")
    if not 0 < days <= 366:
        raise InvalidCommand("--days: between 0 and 366")
    if label in user_tables.SESSIONS:
        raise InvalidCommand(f"--label: {label!r} names a password's session; give the token a label of its own")
    return user_tables.issue_token(runtime.engine, runtime.clock.now(), name, days=days, label=label, by=by.name)


def sessions(runtime: Any, by: Identity, name: str) -> list[dict[str, Any]]:
    """The live sessions ``name``'s password made (one's own, or anyone's for an admin)."""
    if by.name != name:
        may_view(by, "users")
    return user_tables.list_sessions(runtime.engine, runtime.clock.now(), name)


def sign_out_everywhere(runtime: Any, by: Identity, name: str, *, machines: bool = False,
                        keep: str | None = None) -> int:
    """End ``name``'s sessions (one's own but ``keep``, or anyone's for an admin); ``machines``:
    its API tokens too (an admin only). Returns how many ended."""
    if by.name != name or machines:
        may_view(by, "users")
    return user_tables.end_sessions(runtime.engine, runtime.clock.now(), name, machines=machines, keep=keep, by=by.name)


def end_session(runtime: Any, by: Identity, token_id: str) -> None:
    """End one of one's own sessions (an admin: anyone's)."""
    mine = {s["id"] for s in user_tables.list_sessions(runtime.engine, runtime.clock.now(), by.name)}
    if token_id not in mine:
        may_view(by, "users")
    user_tables.revoke_token(runtime.engine, runtime.clock.now(), token_id, by=by.name)


def tokens(runtime: Any, by: Identity, name: str | None = None) -> list[dict[str, Any]]:
    may_view(by, "users")
    return user_tables.list_tokens(runtime.engine, name)


def revoke(runtime: Any, by: Identity, token_id: str) -> None:
    """Revoke an API token or a big screen's display token by its id."""
    may_view(by, "users")
    if user_tables.revoke_display_token(runtime.engine, runtime.clock.now(), token_id, by=by.name):
        return
    user_tables.revoke_token(runtime.engine, runtime.clock.now(), token_id, by=by.name)


def issue_display_token(runtime: Any, by: Identity, street: str, *, days: float = user_tables.DISPLAY_DAYS,
                        label: str = "") -> user_tables.Token:
    """A read-only link for one street's big screen: an admin, or that street's leader or
    dispatcher (who see its dashboard themselves)."""
    s = runtime.reference.street(street)
    if by.role != "admin":
        may_view(by, "dashboard", street=s.id, district=s.district_id)
        if by.role not in ("leader", "dispatcher"):
            from dispatch.domain.errors import Forbidden

            raise Forbidden(f"{by.describe()} may not make big-screen links")
    if not 0 < days <= 3660:
        raise InvalidCommand("--days: between 0 and 3660")
    return user_tables.issue_display_token(runtime.engine, runtime.clock.now(), s.id, days=days, label=label, by=by.name)


def display_tokens(runtime: Any, by: Identity) -> list[dict[str, Any]]:
    may_view(by, "users")
    return user_tables.list_display_tokens(runtime.engine)


def erase_reporter(runtime: Any, by: Identity, *, phone: str | None = None, email: str | None = None) -> int:
    """Erase a reporter's personal data on request (admins): their keys are destroyed, so every
    report of theirs keeps only ciphertext nothing can read. Returns how many keys went."""
    may_view(by, "users")
    if bool(phone) == bool(email):
        raise InvalidCommand("give the reporter's phone number or e-mail (one of them)")
    erased = runtime.vault.erase(phone=phone, email=email)
    user_tables.audit(runtime.engine, runtime.clock.now(), by.name, "reporter.erase", "ok" if erased else "none found",
                "by phone" if phone else "by e-mail")  # the audit log holds no personal data either
    return erased


def audit_log(runtime: Any, by: Identity, limit: int = 100) -> list[dict[str, Any]]:
    may_view(by, "users")
    return user_tables.audit_rows(runtime.engine, limit)
