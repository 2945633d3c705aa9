"""Logging: one JSON object a line with the event's fields, and no reader's address in clear."""

from __future__ import annotations

import io
import json
import logging
import smtplib
from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.config import load_settings
from digest.logs import configure
from digest.mail.message import OutgoingMail, Recipient
from digest.mail.transports.smtp import SmtpTransport


@pytest.fixture
def logged(tmp_path: Path) -> Iterator[tuple[io.StringIO, list[str]]]:
    """Configure JSON logging into a buffer; yield it, then put the root logger back."""
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    buffer = io.StringIO()
    settings = load_settings(_env_file=None, log_format="json", log_level="info")
    configure(settings, stream=buffer)
    yield buffer, []
    root.handlers[:] = saved[1]
    root.setLevel(saved[0])


def _events(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_json_lines_carry_the_event_fields(logged) -> None:
    buffer, _ = logged
    logging.getLogger("digest.delivery.send").info("batch sent", extra={"edition_id": 7,
                                                                   "batch_id": "7-0003"})
    logging.getLogger("digest.delivery.send").debug("below the level")
    (event,) = _events(buffer)
    assert event["message"] == "batch sent"
    assert event["level"] == "INFO" and event["logger"] == "digest.delivery.send"
    assert event["edition_id"] == 7 and event["batch_id"] == "7-0003"


def test_text_lines_append_the_fields(tmp_path: Path) -> None:
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    buffer = io.StringIO()
    try:
        configure(load_settings(_env_file=None), stream=buffer)
        logging.getLogger("digest.feeds.poll").info("feed polled", extra={"feed": "https://b/feed"})
    finally:
        root.handlers[:] = saved[1]
        root.setLevel(saved[0])
    assert buffer.getvalue().rstrip().endswith("feed polled feed=https://b/feed")


def test_no_address_is_written_in_clear(logged) -> None:
    buffer, _ = logged
    log = logging.getLogger("somelibrary")
    log.warning("refused alice.smith+news@example.com and %s", "bob@example.org")
    try:
        raise ValueError("550 <carol@example.net>: no such user")
    except ValueError:
        log.exception("failed")
    text = buffer.getvalue()
    for address in ("alice.smith+news@example.com", "bob@example.org", "carol@example.net"):
        assert address not in text
    assert "a***@example.com" in text and "c***@example.net" in text


class _RefusingConnection:
    def send_message(self, message: object) -> None:
        raise smtplib.SMTPRecipientsRefused(
            {"dana@example.com": (550, b"5.1.1 <dana@example.com>: user unknown")})


def test_smtp_refusal_log_names_the_reader_not_the_address(caplog) -> None:
    """Even before logging is configured (any handler, e.g. an error tracker), no address."""
    mail = OutgoingMail(subject="s", html="<p>h</p>", text="t", from_email="d@example.org",
                        from_name="D")
    refused: list[str] = []
    with caplog.at_level(logging.WARNING, logger="digest.mail.transports.smtp"):
        SmtpTransport._send_one(_RefusingConnection(), mail,  # type: ignore[arg-type]
                                Recipient(email="dana@example.com", subscriber_id=42),
                                "example.org", refused)
    assert refused  # the ledger still records who was refused
    (record,) = caplog.records
    assert "dana@example.com" not in record.getMessage()
    assert "42" in record.getMessage()


def test_a_send_logs_the_claim_and_each_batch_at_info(app, transport, caplog) -> None:
    from digest.delivery.reconcile import reconcile
    from digest.delivery.send import send_digest
    from tests.delivery_helpers import add_post, add_readers

    add_post(app)
    add_readers(app, 3)
    with caplog.at_level(logging.INFO, logger="digest"):
        result = send_digest(app)
        reconcile(app)
    fields = [{k: getattr(r, k, None) for k in ("edition_id", "batch_id", "status")}
              for r in caplog.records]
    assert {"edition_id": result.edition_id, "batch_id": None, "status": "sending"} in fields
    assert {"edition_id": result.edition_id, "batch_id": f"{result.edition_id}-1",
            "status": "sent"} in fields
    assert any(r.getMessage().startswith("reconcile:") for r in caplog.records)
    assert not any("@example.org" in r.getMessage() for r in caplog.records)


def test_migration_and_http_chatter_stays_below_info(logged) -> None:
    buffer, _ = logged
    try:
        logging.getLogger("alembic.runtime.migration").info("Context impl SQLiteImpl.")
        logging.getLogger("httpx").info("HTTP Request: GET https://blog.example.org/feed/")
        logging.getLogger("alembic.runtime.migration").warning("a real problem")
        assert [e["message"] for e in _events(buffer)] == ["a real problem"]
    finally:
        for name in ("alembic", "httpx", "httpcore"):
            logging.getLogger(name).setLevel(logging.NOTSET)
