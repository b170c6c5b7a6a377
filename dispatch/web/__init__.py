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
from dispatch.web.state import WebService

__all__ = ["create_app"]


def create_app(runtime: Any, *, limits: Limits | None = None, submitter: Any = None, https: bool = False,
               cors_origins: tuple[str, ...] = (), background: bool = True,
               watchdog_every: float = 60.0, map_tiles: str | None = None,
               map_attribution: str | None = None, open311_public_reads: bool = False,
               base_url: str = "http://127.0.0.1:8000", shared: bool = False, threads: int | None = None) -> FastAPI:
    """The application. ``background=False`` leaves the watchdog thread off
    (tests drive time themselves); ``submitter`` switches to Kafka mode; ``map_tiles`` is an
    intranet map service's tile URL template (``https://…/{z}/{x}/{y}.png``) for the dashboards' map;
    ``open311_public_reads``: Open311 requests readable without a key (their public fields);
    ``base_url``: where people open the pages (the links in notifications; embedded, the notifier
    runs in-process); ``shared``: one of several workers (``dispatch.web.worker``), whose door
    counts (sign-in failures, rate limits) are kept in the database and whose metrics are summed
    across the workers; ``threads``: requests worked on at once (their database work runs in
    threads; the others wait their turn, oldest first — a few threads that each finish soon answer
    sooner under load than forty sharing one interpreter; None: anyio's 40)."""
    service = WebService(runtime, limits or Limits(), submitter=submitter, watchdog_every=watchdog_every,
                         base_url=base_url, shared=shared)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        import asyncio

        if threads is not None:  # the requests worked on at once (FastAPI runs them in anyio's threads)
            import anyio.to_thread

            anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        service.live.start(asyncio.get_running_loop())
        if service.projector is not None:  # what other processes write is projected from the start
            service.projector.start()
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
    app.state.board_settings = {"tiles": map_tiles, "attribution": map_attribution}
    app.state.open311_public_reads = open311_public_reads
    problems.install(app, on_refusal=service.refused)

    from fastapi.staticfiles import StaticFiles

    from dispatch.web import api, health, open311, pages, screens

    app.include_router(api.router)
    app.include_router(open311.router)
    app.include_router(pages.router)
    app.include_router(screens.router)
    app.mount("/static", StaticFiles(packages=[("dispatch.web", "static")]), name="static")
    app.include_router(health.router)
    from dispatch.web import openapi

    openapi.install(app, runtime)
    app.add_middleware(service.metrics.middleware)
    if cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type", "Idempotency-Key"])
    app.add_middleware(SecurityHeaders, https=https, images=_origin(map_tiles))
    from dispatch.adapters.media import MAX_PHOTO_BYTES

    app.add_middleware(SizeLimit, limit=service.limits.max_body, uploads=("/report",),
                       upload_limit=MAX_PHOTO_BYTES + 64 * 1024)
    return app


def _origin(url: str | None) -> tuple[str, ...]:
    """The origin a tile URL template loads images from (for the content security policy)."""
    if not url:
        return ()
    from urllib.parse import urlsplit

    parts = urlsplit(url.replace("{s}", "a"))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        from dispatch.domain.errors import DispatchError

        raise DispatchError(f"map tiles {url!r}: give an http(s) URL template such as https://maps.example/{{z}}/{{x}}/{{y}}.png")
    host = parts.netloc if "{s}" not in url else "*." + parts.netloc.split(".", 1)[1]
    return (f"{parts.scheme}://{host}",)
