"""Logging: one JSON object per line through structlog, joined by request id. Never secrets or image bytes."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, TextIO

import structlog


class _Dumps:
    """`json.dumps(event, ensure_ascii=False, **kw)`, the same text, without building a JSONEncoder for every
    line (json.dumps does with any non-default argument): the request log line is on every request's path."""

    def __init__(self) -> None:
        self._encoder: json.JSONEncoder | None = None

    def __call__(self, event: Any, **kw: Any) -> str:
        if self._encoder is None:  # kw is JSONRenderer's own, the same on every call
            self._encoder = json.JSONEncoder(ensure_ascii=False, **kw)
        return self._encoder.encode(event)


def configure_logging(level: str = "info", stream: TextIO = sys.stdout) -> None:
    numeric = logging.getLevelName(level.upper())
    logging.basicConfig(stream=stream, level=numeric, format="%(message)s")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=_Dumps()),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=True,
    )
