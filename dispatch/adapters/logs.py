"""structlog, configured once per entry point.

Readable key=value lines in a terminal, JSON lines otherwise; the standard
library's loggers (kafka-python, SQLAlchemy, eventsourcing) are routed through
the same processors so every line has one shape.

structlog itself is imported when something first logs through it: modules take their logger
from ``get_logger`` (which applies the configuration asked for), and a standard-library record
logged before that does it too — a read command that logs nothing never loads structlog.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

__all__ = ["configure_logging", "get_logger"]

_pending: dict[str, Any] | None = None
_settling = threading.Lock()  # threads logging their first lines at once configure it once, all waiting for it


def configure_logging(level: str = "INFO", *, json: bool | None = None, stream: object = None) -> None:
    global _pending
    stream = stream or sys.stderr
    if json is None:
        json = not getattr(stream, "isatty", lambda: False)()
    root = logging.getLogger()
    root.setLevel(level.upper())
    # Third-party chatter stays at WARNING unless asked for.
    for noisy in ("kafka", "sqlalchemy", "eventsourcing"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # kafka-python's selector warns about every slow event-loop turn under load.
    logging.getLogger("kafka.net.selector").setLevel(logging.ERROR)
    _pending = {"json": json, "stream": stream}
    if "structlog" in sys.modules:
        _settle()
    else:
        root.handlers[:] = [_Deferred()]


def get_logger(name: str) -> Any:
    """``structlog.get_logger(name)``, with the configuration ``configure_logging`` asked for."""
    import structlog

    _settle()
    return structlog.get_logger(name)


class _Deferred(logging.Handler):
    """Stands for the real handler until the first record: configures structlog, then hands
    the record on."""

    def emit(self, record: logging.LogRecord) -> None:
        _settle()
        for handler in logging.getLogger().handlers:
            if handler is not self and record.levelno >= handler.level:
                handler.handle(record)


def _settle() -> None:
    global _pending
    if _pending is None:
        return
    with _settling:
        if _pending is None:
            return
        _configure(_pending)
        _pending = None


def _configure(wanted: dict[str, Any]) -> None:
    import structlog

    stream = wanted["stream"]
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False) if wanted["json"]
        else structlog.dev.ConsoleRenderer(colors=False)
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
    logging.getLogger().handlers[:] = [handler]
