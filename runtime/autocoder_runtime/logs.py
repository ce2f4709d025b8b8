"""Structured logs: one JSON object a line on stderr, with the event's fields."""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

LOG = logging.getLogger("autocoder_runtime")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class JsonFormatter(logging.Formatter):
    """time, level, logger, message and the record's `fields`, as one JSON object."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 6),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, sort_keys=True, default=repr)


def resolve_level(given: str | None, default: str) -> str:
    """The log level: an explicit one, else $LOG_LEVEL, else the blueprint's default."""
    level = (given or os.environ.get("LOG_LEVEL") or default).upper()
    if level not in LEVELS:
        raise ValueError(f"unknown log level {level!r}; expected one of {', '.join(LEVELS)}")
    return level


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def log(level: int, event: str, **fields: Any) -> None:
    LOG.log(level, event, extra={"fields": fields})
