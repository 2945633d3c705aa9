"""Export the operator's list as CSV: every reader with every field.

Cells a spreadsheet would run as a formula are neutralised with a leading quote
(``csvcolumns.FORMULA_STARTS``); an import reads them back unchanged, so an export is a valid
import for another instance.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO

from digest.readers.csvcolumns import FORMULA_STARTS
from digest.readers.roster import list_subscribers
from digest.runtime import App
from digest.store.models import Subscriber

__all__ = ["EXPORT_FIELDS", "export_chunks", "export_csv"]

EXPORT_FIELDS = ("id", "email", "email_hash", "name", "status", "cadence", "paused",
                 "created_at", "confirmed_at", "unsubscribed_at", "confirmation_sent_at",
                 "consent_at", "consent_ip", "consent_source", "suppressed_reason")


def _export_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def export_chunks(app: App) -> Iterator[str]:
    """The whole list as CSV text, a page of readers per chunk (for a streamed download)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_FIELDS)
    for count, sub in enumerate(list_subscribers(app), start=1):
        writer.writerow(_export_row(sub))
        if count % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def export_csv(app: App, path_or_stream: str | Path | IO[str]) -> int:
    """Write every reader with every field as CSV; returns how many rows were written."""
    if isinstance(path_or_stream, str | Path):
        with Path(path_or_stream).open("w", encoding="utf-8", newline="") as fh:
            return export_csv(app, fh)
    writer = csv.writer(path_or_stream)
    writer.writerow(EXPORT_FIELDS)
    count = 0
    for sub in list_subscribers(app):
        writer.writerow(_export_row(sub))
        count += 1
    return count


def _export_row(sub: Subscriber) -> list[str]:
    return [_export_value(getattr(sub, name)) for name in EXPORT_FIELDS]
