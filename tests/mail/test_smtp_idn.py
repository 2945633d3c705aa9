"""SMTP as a real server receives it: plain URL headers, no injected lines, IDN addresses.

A local aiosmtpd server records the envelope and the raw bytes of every message.
"""

# Umlauts in addresses are the point of these tests.
# ruff: noqa: RUF001

from __future__ import annotations

import email
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.policy import default
from pathlib import Path
from typing import Any

import pytest

from digest.mail.compose import outgoing_mail
from digest.mail.message import Recipient
from digest.mail.render import render_digest
from digest.mail.transports.smtp import SmtpTransport
from tests.mail_hostile import (
    INJECTED_TITLES,
    LONG_BASE_URL,
    assert_plain_headers,
    header_block,
    hostile_settings,
    post_with_title,
    reader,
)
from tests.mail_samples import sample_sections

aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller")


@dataclass
class Received:
    """One message as the server got it."""

    mail_from: str
    rcpt_tos: list[str]
    smtputf8: bool
    raw: bytes


@dataclass
class Recorder:
    messages: list[Received] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                      bool(envelope.smtp_utf8), bytes(envelope.content)))
        return "250 OK"


def _server(smtputf8: bool) -> Iterator[tuple[Recorder, str]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    recorder = Recorder()
    controller = aiosmtpd_controller.Controller(
        recorder, hostname="127.0.0.1", port=port, enable_SMTPUTF8=smtputf8)
    controller.start()
    try:
        yield recorder, f"smtp://127.0.0.1:{port}"
    finally:
        controller.stop()


@pytest.fixture
def plain_server() -> Iterator[tuple[Recorder, str]]:
    """A server without SMTPUTF8, like many relays."""
    yield from _server(smtputf8=False)


@pytest.fixture
def utf8_server() -> Iterator[tuple[Recorder, str]]:
    yield from _server(smtputf8=True)


@pytest.mark.parametrize("subscriber_id", [1000, 123456789])
def test_smtp_list_unsubscribe_arrives_as_plain_ascii(
    tmp_path: Path, plain_server: tuple[Recorder, str], subscriber_id: int
) -> None:
    recorder, url = plain_server
    settings = hostile_settings(tmp_path)
    mail = outgoing_mail(settings, render_digest(settings, sample_sections(2)), edition_id=99999)
    one = reader(settings, subscriber_id, name="Ayşe Yılmaz")
    assert SmtpTransport.from_url(url, timeout=5).send_batch(mail, [one]) == []
    (message,) = recorder.messages
    headers = assert_plain_headers(message.raw)
    unsub = one.substitutions["[%unsubscribe_url%]"]
    assert unsub.startswith(LONG_BASE_URL) and len(unsub) > 78
    assert headers["List-Unsubscribe"] == (
        f"<{unsub}>, <mailto:unsubscribe@news.example.org?subject=unsubscribe>")
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert not message.smtputf8


@pytest.mark.parametrize("title", INJECTED_TITLES)
def test_smtp_feed_titles_cannot_add_header_lines(
    tmp_path: Path, plain_server: tuple[Recorder, str], title: str
) -> None:
    recorder, url = plain_server
    settings = hostile_settings(tmp_path)
    mail = outgoing_mail(settings, render_digest(settings, post_with_title(title)), edition_id=1)
    SmtpTransport.from_url(url, timeout=5).send_batch(mail, [Recipient("r@example.org")])
    (message,) = recorder.messages
    names = [name.lower() for name, _ in header_block(message.raw)]
    assert "x-evil" not in names
    assert names.count("reply-to") == 1 and names.count("subject") == 1
    parsed = email.message_from_bytes(message.raw, policy=default)
    assert parsed["Reply-To"] == "editor@news.example.org"
    assert "\n" not in str(parsed["Subject"]) and "\r" not in str(parsed["Subject"])
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]


def test_idn_domains_travel_as_ascii_and_one_utf8_reader_does_not_stop_the_batch(
    tmp_path: Path, plain_server: tuple[Recorder, str]
) -> None:
    recorder, url = plain_server
    settings = hostile_settings(tmp_path)
    mail = outgoing_mail(settings, render_digest(settings, sample_sections(1)), edition_id=1)
    batch = [Recipient("a@example.org"), Recipient("user@bücher.de", "Jörg"),
             Recipient("jörg@example.org"), Recipient("user@xn--bcher-kva.de"),
             Recipient("z@example.org")]
    refused = SmtpTransport.from_url(url, timeout=5).send_batch(mail, batch)
    assert [m.rcpt_tos for m in recorder.messages] == [
        ["a@example.org"], ["user@xn--bcher-kva.de"], ["user@xn--bcher-kva.de"],
        ["z@example.org"]]
    assert not any(m.smtputf8 for m in recorder.messages)
    for message in recorder.messages:
        assert_plain_headers(message.raw)
    to = dict(header_block(recorder.messages[1].raw))["To"]
    assert to.endswith("<user@xn--bcher-kva.de>")
    assert len(refused) == 1
    assert refused[0].startswith("jörg@example.org: ") and "SMTPUTF8" in refused[0]


def test_smtputf8_is_used_only_for_a_non_ascii_local_part(
    tmp_path: Path, utf8_server: tuple[Recorder, str]
) -> None:
    recorder, url = utf8_server
    settings = hostile_settings(tmp_path)
    mail = outgoing_mail(settings, render_digest(settings, sample_sections(1)), edition_id=1)
    batch = [Recipient("jörg@bücher.de"), Recipient("user@bücher.de")]
    assert SmtpTransport.from_url(url, timeout=5).send_batch(mail, batch) == []
    first, second = recorder.messages
    assert first.rcpt_tos == ["jörg@xn--bcher-kva.de"] and first.smtputf8
    assert "To: jörg@xn--bcher-kva.de" in first.raw.decode("utf-8")
    assert second.rcpt_tos == ["user@xn--bcher-kva.de"] and not second.smtputf8
    assert_plain_headers(second.raw)


def test_one_refused_reader_is_recorded_alone_and_the_batch_is_sent(
    app: Any, plain_server: tuple[Recorder, str]
) -> None:
    import dataclasses

    from sqlalchemy import insert, select

    from digest.delivery.send import send_digest
    from digest.readers.addresses import email_hash
    from digest.store.models import Batch, BatchStatus, Subscriber, SubscriberStatus
    from digest.store.sessions import transaction
    from tests.delivery_helpers import add_post

    recorder, url = plain_server
    smtp_app = dataclasses.replace(
        app, transport_factory=lambda: SmtpTransport.from_url(url, timeout=5))
    add_post(smtp_app)
    # Stored before domains were kept in ASCII form, and one that needs SMTPUTF8.
    addresses = ["a@example.org", "user@bücher.de", "jörg@example.org", "z@example.org"]
    with transaction(smtp_app.sessions) as session:
        session.execute(insert(Subscriber), [
            {"email": address, "email_hash": email_hash(address, smtp_app.address_key),
             "name": None, "status": SubscriberStatus.ACTIVE} for address in addresses])
    result = send_digest(smtp_app)
    assert result.status == "sent" and result.sent == result.batches and result.failed == 0
    assert [m.rcpt_tos for m in recorder.messages] == [
        ["a@example.org"], ["user@xn--bcher-kva.de"], ["z@example.org"]]
    with smtp_app.sessions() as session:
        (batch,) = session.scalars(select(Batch)).all()
    assert batch.status == BatchStatus.SENT
    assert batch.error is not None and batch.error.startswith("1 readers refused: jörg@example.org")
    assert "SMTPUTF8" in batch.error
