"""Errors as RFC 9457 problem details (``application/problem+json``), carrying the same
``code`` as the CLI's ``--json`` errors and the dead letters (docs/errors.md)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from dispatch import errors as e

__all__ = ["PROBLEM", "install", "problem", "status_of"]

PROBLEM = "application/problem+json"

# most specific first
_STATUS: list[tuple[type[e.DispatchError], int]] = [
    (e.Unauthenticated, 401),
    (e.Forbidden, 403),
    (e.TicketNotFound, 404),
    (e.UnknownUser, 404),
    (e.CommandNotFound, 404),
    (e.UnknownReference, 422),
    (e.InvalidCommand, 422),
    (e.BusinessTimeOutOfRange, 422),
    (e.DuplicateCommand, 409),
    (e.AlreadyReported, 409),
    (e.UserExists, 409),
    (e.ConcurrentChange, 409),
    (e.TransitionError, 409),
    (e.DatabaseError, 503),
]
_TITLES = {401: "Sign in first", 403: "Not allowed", 404: "Not found", 409: "Conflict with the ticket's state",
           413: "Request too large", 415: "Send JSON", 422: "Invalid request", 429: "Too many requests",
           503: "Service unavailable", 500: "Internal error", 405: "Method not allowed"}


def status_of(error: e.DispatchError) -> int:
    kind_of: type = type(error)
    if isinstance(error, e.Refused):
        kind_of = error.kind or e.DispatchError
    for kind, status in _STATUS:
        if issubclass(kind_of, kind):
            return status
    return 400


def problem(status: int, code: str, detail: str, *, instance: str | None = None,
            headers: dict[str, str] | None = None, **extra: Any) -> Response:
    body = {"type": f"urn:dispatch:error:{code}", "title": _TITLES.get(status, "Bad request"), "status": status,
            "detail": " ".join(detail.split()), "code": code}
    if instance:
        body["instance"] = instance
    body.update(extra)
    return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM, headers=headers)


def _validation_detail(error: RequestValidationError) -> str:
    parts = []
    for item in error.errors()[:3]:
        where = ".".join(str(p) for p in item.get("loc", ()) if p not in ("body", "query", "path", "header"))
        message = ("contains a control character" if item.get("type") == "string_pattern_mismatch"
                   else str(item.get("msg", "invalid")))
        parts.append(f"{where or 'body'}: {message}")
    return "; ".join(parts) or "the request is not valid"


def install(app: Any, on_refusal: Any = None) -> None:
    """Every error becomes a problem; ``on_refusal(request, error)`` hears of each refused request."""

    @app.exception_handler(e.DispatchError)
    async def dispatch_error(request: Request, error: e.DispatchError) -> Response:
        if on_refusal is not None:
            on_refusal(request, error)
        status = status_of(error)
        headers = {"WWW-Authenticate": 'Bearer realm="dispatch"'} if status == 401 else None
        extra: dict[str, Any] = {}
        if isinstance(error, e.AlreadyReported):
            extra["ticket_id"] = str(error.ticket_id)
        return problem(status, error.code, str(error), instance=request.url.path, headers=headers, **extra)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> Response:
        return problem(422, "invalid_command", _validation_detail(error), instance=request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 429: "rate_limited",
                415: "unsupported_media_type"}.get(error.status_code, "http_error")
        return problem(error.status_code, code, str(error.detail), instance=request.url.path,
                       headers=getattr(error, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:
        import structlog

        from dispatch.dberrors import DRIVER_ERRORS

        if isinstance(error, DRIVER_ERRORS):
            structlog.get_logger("dispatch.web").warning("database failed", path=request.url.path, error=str(error))
            return problem(503, "database_unavailable", "the database cannot be reached now; try again",
                           instance=request.url.path)
        structlog.get_logger("dispatch.web").error("unexpected", path=request.url.path, exc_info=error)
        return problem(500, "internal_error", "an unexpected problem; it was logged", instance=request.url.path)
