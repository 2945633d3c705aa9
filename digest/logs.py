"""Logging, configured once for the CLI, the web app and the Celery worker.

``DIGEST_LOG_FORMAT`` picks one line of text or one JSON object per event; ``DIGEST_LOG_LEVEL``
the threshold. Events carry their context as fields (``extra={"edition_id": ..}``), which the
JSON form keeps as keys and the text form appends as ``key=value``. Readers' addresses are
never written in clear: every line, exception text included, has them masked on the way out
(``a***@example.com``), whichever library logged them.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from digest.config import Settings

__all__ = ["JsonFormatter", "TextFormatter", "configure", "mask_addresses"]

LogFormat = Literal["text", "json"]

_ADDRESS = re.compile(r"([\w.!#$%&'*+/=?^`{|}~-])[\w.!#$%&'*+/=?^`{|}~-]*@([\w-]+(?:\.[\w-]+)+)")
# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_HANDLER_NAME = "digest"
# Libraries whose INFO lines are noise for an operator (each migration step, each HTTP request);
# they still speak at DEBUG.
_CHATTY = ("alembic", "httpx", "httpcore")


def mask_addresses(text: str) -> str:
    """``alice@example.com`` -> ``a***@example.com``: enough to tell domains apart, no more."""
    return _ADDRESS.sub(r"\1***@\2", text)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class TextFormatter(logging.Formatter):
    """``time level logger: message key=value ...``, addresses masked."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        if fields:
            head, sep, rest = line.partition("\n")
            line = f"{head} {fields}{sep}{rest}"
        return mask_addresses(line)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the event's fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        event.update(_fields(record))
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        return mask_addresses(json.dumps(event, default=str, ensure_ascii=False))


def configure(settings: Settings | None = None, *, stream: Any = None) -> logging.Handler:
    """Send every logger's records to stderr in the configured format; safe to call again.

    ``settings`` None (settings that do not load) falls back to text at INFO, so the command
    can still report what is wrong with them.
    """
    fmt: LogFormat = settings.log_format if settings is not None else "text"
    level = settings.log_level if settings is not None else "INFO"
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(level if level == "DEBUG" else "WARNING")
    return handler
