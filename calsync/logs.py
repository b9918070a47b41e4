"""Logging: one line per event, ``key=value`` text or JSON, with the request id when there is one.

The request id lives in a context variable set by the HTTP middleware, so
every line logged while a request is handled carries it. Nothing here ever
formats request headers or bodies: secrets and tokens never reach the log.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

request_id: ContextVar[str | None] = ContextVar("calsync_request_id", default=None)
QUIET = ("alembic", "apscheduler", "uvicorn.access")


class _RequestId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        line = f"{stamp} level={record.levelname} logger={record.name}"
        rid = getattr(record, "request_id", None)
        if rid:
            line += f" request_id={rid}"
        line += f" {record.getMessage()}"
        if record.exc_info:
            line += " " + self.formatException(record.exc_info).replace("\n", " | ")
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None)
        if rid:
            entry["request_id"] = rid
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup(level: str, fmt: str) -> None:
    """Log to stderr (journald picks it up) at ``level`` in ``fmt`` (``text`` or ``json``)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(_RequestId())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in QUIET:
        logging.getLogger(noisy).setLevel(logging.WARNING)
