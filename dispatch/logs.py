"""structlog, configured once per entry point.

Readable key=value lines in a terminal, JSON lines otherwise; the standard
library's loggers (kafka-python, SQLAlchemy, eventsourcing) are routed through
the same processors so every line has one shape.
"""

from __future__ import annotations

import logging
import sys

import structlog

__all__ = ["configure_logging"]


def configure_logging(level: str = "INFO", *, json: bool | None = None, stream: object = None) -> None:
    stream = stream or sys.stderr
    if json is None:
        json = not getattr(stream, "isatty", lambda: False)()
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False) if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)  # type: ignore[arg-type]
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Third-party chatter stays at WARNING unless asked for.
    for noisy in ("kafka", "sqlalchemy", "eventsourcing"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # kafka-python's selector warns about every slow event-loop turn under load.
    logging.getLogger("kafka.net.selector").setLevel(logging.ERROR)
