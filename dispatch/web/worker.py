"""A web process's wiring from its options, for ``dispatch web`` alone and for each of its
``--workers N``: uvicorn starts every worker in a process of its own and calls ``app()``, which
reads the options the parent left in ``DISPATCH_WEB_WORKER`` (JSON) and wires that process —
its own bootstrap and connections, the door's counts (sign-in failures, rate limits) shared
through the database, the watchdog and notifier run by one process of the deployment at a time
(``dispatch.adapters.database.OneAtATime``). Sessions, idempotency keys and the live pages' positions live
in the database already, so any worker answers any request."""

from __future__ import annotations

import json
import os
import signal
from typing import Any

__all__ = ["ENV", "app", "build"]

ENV = "DISPATCH_WEB_WORKER"


def build(runtime: Any, options: dict[str, Any]) -> Any:
    """The application on ``runtime`` as ``options`` say (``dispatch.cli.web`` makes them)."""
    from dispatch.web import create_app
    from dispatch.web.guard import Limits

    runtime.app  # a server builds its application now, not on the first write
    submitter = None
    if options.get("kafka"):
        from dispatch.service.submission import KafkaSubmitter

        runtime._kafka_options = (options["kafka"], options.get("topic_prefix"))
        submitter = KafkaSubmitter(runtime)
    return create_app(runtime, limits=Limits.from_env(dict(os.environ)), submitter=submitter,
                      https=bool(options.get("https")), cors_origins=tuple(options.get("cors") or ()),
                      watchdog_every=float(options.get("watchdog_every", 60.0)), map_tiles=options.get("map_tiles"),
                      map_attribution=options.get("map_attribution"),
                      open311_public_reads=bool(options.get("open311_public_reads")),
                      base_url=options["base_url"], shared=bool(options.get("shared")),
                      threads=options.get("threads"))


def app() -> Any:
    """One worker's application (uvicorn's factory): its own runtime, the parent's options."""
    from dispatch.bootstrap import bootstrap, freeze_startup

    options = json.loads(os.environ[ENV])
    application = build(bootstrap(options.get("db"), create=False), options)
    close_streams_on_exit(application.state.service.live)
    freeze_startup()
    return application


def close_streams_on_exit(live: Any) -> None:
    """When the process is told to stop, the pages' event streams end at once (the browsers
    reconnect when it is back) instead of holding the shutdown for its grace period. uvicorn's
    own handler (installed before the application is loaded) still runs after."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        before = signal.getsignal(sig)

        def closing(signum: int, frame: Any, before: Any = before) -> None:
            live.close()
            if callable(before):
                before(signum, frame)

        try:
            signal.signal(sig, closing)
        except ValueError:  # not the main thread (a test's server): nothing to hook
            return
