"""``dispatch web``: the people's door. ``create_app`` builds the FastAPI application on a
runtime (``dispatch.bootstrap``); ``dispatch.cli.web`` serves it with uvicorn.

- ``/api/…`` — the REST API (``dispatch.web.api``), OpenAPI at ``/api/openapi.json``;
- ``/healthz``, ``/readyz``, ``/metrics`` — for whoever runs it (``dispatch.web.health``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from dispatch.web import problems
from dispatch.web.guard import Limits, SecurityHeaders, SizeLimit
from dispatch.web.service import WebService

__all__ = ["create_app"]


def create_app(runtime: Any, *, limits: Limits | None = None, submitter: Any = None, https: bool = False,
               cors_origins: tuple[str, ...] = (), background: bool = True,
               watchdog_every: float = 60.0) -> FastAPI:
    """The application. ``background=False`` leaves the catch-up and watchdog thread off
    (tests drive time themselves); ``submitter`` switches to Kafka mode."""
    service = WebService(runtime, limits or Limits(), submitter=submitter, watchdog_every=watchdog_every)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if background:
            service.start()
        try:
            yield
        finally:
            service.stop()

    from importlib.metadata import PackageNotFoundError, version

    try:
        __version__ = version("dispatch")
    except PackageNotFoundError:
        __version__ = "0"
    app = FastAPI(title="dispatch", version=__version__, lifespan=lifespan, openapi_url="/api/openapi.json",
                  docs_url=None, redoc_url=None,  # their pages load scripts from a CDN: not on an intranet
                  description="Grid work orders: report → whistle → report in → handle → feedback → evaluate. "
                              "Every request but sign-in carries `Authorization: Bearer <token>`.")
    app.state.service = service
    problems.install(app, on_refusal=service.refused)

    from fastapi.staticfiles import StaticFiles

    from dispatch.web import api, health, open311, pages

    app.include_router(api.router)
    app.include_router(open311.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(packages=[("dispatch.web", "static")]), name="static")
    app.include_router(health.router)
    app.middleware("http")(service.metrics.middleware())
    if cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type", "Idempotency-Key"])
    app.add_middleware(SecurityHeaders, https=https)
    from dispatch.media import MAX_PHOTO_BYTES

    app.add_middleware(SizeLimit, limit=service.limits.max_body, uploads=("/report",),
                       upload_limit=MAX_PHOTO_BYTES + 64 * 1024)
    return app
