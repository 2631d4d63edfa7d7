"""structlog configuration, done once per process entry point.

JSON lines when the output is not a terminal (production, CI), readable console
lines on a terminal. Event names are snake_case facts; bind request and job ids
at the boundary. Never log keys, prompts or completions. With tracing on, every line
logged under a span carries its `trace_id` and `span_id` (`shared/tracing.py`).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog

from shared.settings import Settings

_SECRET_FIELDS = frozenset({"api_key", "authorization", "key", "password", "secret", "token", "x-api-key"})


def _drop_secrets(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Last line of defence: a field named like a secret is never written out."""
    for name in list(event):
        if name.lower() in _SECRET_FIELDS:
            event[name] = "[redacted]"
    return event


def event_processors(settings: Settings) -> list[Any]:
    """What every log event goes through before it is rendered."""
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _drop_secrets,
        structlog.processors.format_exc_info,
    ]
    if settings.tracing:  # off: not even the lookup of the current span
        from shared.tracing import add_trace_ids

        processors.insert(1, add_trace_ids)
    return processors


def configure_logging(settings: Settings, *, process: str) -> None:
    level = logging.getLevelName(settings.log_level.upper())
    if not isinstance(level, int):
        level = logging.INFO
    fmt = settings.log_format
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"
    console = fmt == "console"
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=True) if console
        else structlog.processors.JSONRenderer(serializer=orjson.dumps)
    )
    structlog.configure(
        processors=[*event_processors(settings), renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=(structlog.PrintLoggerFactory(file=sys.stderr) if console
                        else structlog.BytesLoggerFactory(file=sys.stderr.buffer)),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(process=process)
    # Libraries that log through the standard library: keep their warnings, drop per-job chatter.
    logging.basicConfig(level=max(level, logging.WARNING), stream=sys.stderr, format="%(name)s %(message)s")
    for noisy in ("arq.worker", "arq.jobs", "uvicorn.access", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
