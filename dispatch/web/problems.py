"""Errors as RFC 9457 problem details (``application/problem+json``), carrying the same
``code`` as the CLI's ``--json`` errors and the dead letters (docs/errors.md). A client that asks
in Chinese (``Accept-Language: zh…`` first) gets the Chinese ``title`` and ``detail`` of
``dispatch.domain.messages``; the ``code`` is the same either way."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from dispatch.domain import errors as e

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
    (e.NotWaitingToBePlaced, 409),
    (e.TransitionError, 409),
    (e.DatabaseError, 503),
]
_TITLES = {401: "Sign in first", 403: "Not allowed", 404: "Not found", 409: "Conflict with the ticket's state",
           413: "Request too large", 415: "Send JSON", 422: "Invalid request", 429: "Too many requests",
           503: "Service unavailable", 500: "Internal error", 405: "Method not allowed"}


_TITLES_ZH = {400: "请求有误", 401: "请先登录", 403: "没有权限", 404: "没有找到", 405: "不支持这种请求", 409: "与工单当前状态冲突",
              413: "提交的内容过大", 415: "请发送 JSON", 422: "请求有误", 429: "请求过于频繁", 500: "内部错误",
              503: "服务暂不可用"}


def wants_chinese(request: Request) -> bool:
    """Whether the client's first language choice is Chinese (``zh``, ``zh-CN``, ``zh-Hans``…)."""
    first = (request.headers.get("accept-language") or "").split(",", 1)[0].split(";", 1)[0].strip().lower()
    return first == "zh" or first.startswith("zh-")


def _in_chinese(request: Request, body: dict[str, Any], error: Any = None, **words: Any) -> None:
    from dispatch.domain.messages import chinese, sentence

    body["title"] = _TITLES_ZH.get(body["status"], "请求有误")
    body["detail"] = chinese(error, **words) if error is not None else sentence(body["code"], **words)


def status_of(error: e.DispatchError) -> int:
    kind_of: type = type(error)
    if isinstance(error, e.Refused):
        kind_of = error.kind or e.DispatchError
    for kind, status in _STATUS:
        if issubclass(kind_of, kind):
            return status
    return 400


def problem(status: int, code: str, detail: str, *, instance: str | None = None,
            headers: dict[str, str] | None = None, chinese: Request | None = None, error: Any = None,
            words: dict[str, Any] | None = None, **extra: Any) -> Response:
    """A problem body; ``chinese``: the request, when it asked for Chinese (title and detail then
    from ``dispatch.domain.messages``: of ``error`` when given, else of ``code`` with ``words``)."""
    body: dict[str, Any] = {"type": f"urn:dispatch:error:{code}", "title": _TITLES.get(status, "Bad request"),
                            "status": status, "detail": " ".join(detail.split()), "code": code}
    if chinese is not None and wants_chinese(chinese):
        _in_chinese(chinese, body, error, **(words or {}))
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


_MACHINE_DOORS = ("/api/", "/open311/", "/metrics", "/healthz", "/readyz")


def _a_person(request: Request) -> bool:
    """A browser navigating to a page or posting its form (not htmx, not a program): it is shown a
    page in Chinese, never a JSON body."""
    return (request.method in ("GET", "POST") and "text/html" in (request.headers.get("accept") or "")
            and "hx-request" not in request.headers and not request.url.path.startswith(_MACHINE_DOORS))


def _page(request: Request, status: int, error: e.DispatchError) -> Response:
    from starlette.responses import RedirectResponse

    if isinstance(error, e.Unauthenticated):  # signed out meanwhile: to the sign-in page
        return RedirectResponse("/login", status_code=303)
    from dispatch.web.pages import _render, refusal

    return _render(request, "message.html", status=status, message=refusal(request, error))


def install(app: Any, on_refusal: Any = None) -> None:
    """Every error becomes a problem; ``on_refusal(request, error)`` hears of each refused request."""

    @app.exception_handler(e.DispatchError)
    async def dispatch_error(request: Request, error: e.DispatchError) -> Response:
        if on_refusal is not None:
            on_refusal(request, error)
        status = status_of(error)
        if _a_person(request):
            return _page(request, status, error)
        headers = {"WWW-Authenticate": 'Bearer realm="dispatch"'} if status == 401 else None
        extra: dict[str, Any] = {}
        if isinstance(error, e.AlreadyReported):
            extra["ticket_id"] = str(error.ticket_id)
        return problem(status, error.code, str(error), instance=request.url.path, headers=headers,
                       chinese=request, error=error, **extra)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> Response:
        from dispatch.domain.messages import FIELDS

        where = [str(p) for p in (error.errors()[:1] or [{}])[0].get("loc", ()) if p not in ("body", "query", "path", "header")]
        field = FIELDS.get(where[-1], where[-1]) if where else None
        return problem(422, "invalid_command", _validation_detail(error), instance=request.url.path,
                       chinese=request, words={"field": field})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 429: "rate_limited",
                415: "unsupported_media_type"}.get(error.status_code, "http_error")
        retry = (getattr(error, "headers", None) or {}).get("Retry-After")
        return problem(error.status_code, code, str(error.detail), instance=request.url.path,
                       headers=getattr(error, "headers", None), chinese=request,
                       words={"wait": f"{retry} 秒" if retry else None})

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:
        from dispatch.adapters.logs import get_logger

        from dispatch.adapters.dberrors import DRIVER_ERRORS

        if isinstance(error, DRIVER_ERRORS):
            get_logger("dispatch.web").warning("database failed", path=request.url.path, error=str(error))
            return problem(503, "database_unavailable", "the database cannot be reached now; try again",
                           instance=request.url.path, chinese=request)
        get_logger("dispatch.web").error("unexpected", path=request.url.path, exc_info=error)
        return problem(500, "internal_error", "an unexpected problem; it was logged", instance=request.url.path,
                       chinese=request)
