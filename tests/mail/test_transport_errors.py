"""SendGrid and SMTP failures are mapped at the boundary (nothing unmapped slips through)."""

from __future__ import annotations

import socket

import pytest
from python_http_client.exceptions import HTTPError

from digest.errors import ConfigError, PermanentDeliveryError, TransientDeliveryError
from digest.mail.message import OutgoingMail, Recipient
from digest.mail.transports.base import MaybeAccepted
from digest.mail.transports.sendgrid import SendGridTransport, map_http_error, retry_after_seconds
from digest.mail.transports.smtp import SmtpTransport, parse_smtp_url

MAIL = OutgoingMail("s", "<p>h</p>", "t", "a@example.org", "A")


@pytest.mark.parametrize("status, kind", [
    (429, TransientDeliveryError), (500, TransientDeliveryError), (503, TransientDeliveryError),
    (400, PermanentDeliveryError), (401, PermanentDeliveryError), (403, PermanentDeliveryError),
    (413, PermanentDeliveryError),
])
def test_http_errors_are_mapped(status: int, kind: type) -> None:
    err = map_http_error(HTTPError(status, "r", b'{"errors":[{"message":"bad from"}]}',
                                   {"Retry-After": "7"}))
    assert isinstance(err, kind) and err.status == status
    assert "bad from" in str(err)
    if kind is TransientDeliveryError:
        assert err.retry_after == 7


def test_rate_limit_reset_header() -> None:
    assert retry_after_seconds({"X-RateLimit-Reset": "1030"}, now=1000) == 30
    assert retry_after_seconds({}, now=1000) is None


def test_connection_refused_and_timeout_are_transient() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TransientDeliveryError) as refused:  # never sent: retried at once
        SendGridTransport("k", f"http://127.0.0.1:{port}", timeout=2).send_batch(
            MAIL, [Recipient("r@example.org")])
    assert not isinstance(refused.value, MaybeAccepted)
    with socket.socket() as server:  # accepts, never answers
        server.bind(("127.0.0.1", 0))
        server.listen()
        host = f"http://127.0.0.1:{server.getsockname()[1]}"
        with pytest.raises(MaybeAccepted, match=r"timed out"):  # sent: SendGrid may have it
            SendGridTransport("k", host, timeout=0.5).send_batch(MAIL, [Recipient("r@x.org")])


def test_smtp_url_parsing_and_connection_failure() -> None:
    cfg = parse_smtp_url("smtp+starttls://user%40x:p%3Ass@mail.example.org")
    assert (cfg.host, cfg.port, cfg.security, cfg.username, cfg.password) == (
        "mail.example.org", 587, "starttls", "user@x", "p:ss")
    assert "p:ss" not in repr(cfg)
    assert parse_smtp_url("smtps://h").port == 465
    with pytest.raises(ConfigError):
        parse_smtp_url("http://h")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TransientDeliveryError):
        SmtpTransport.from_url(f"smtp://127.0.0.1:{port}", timeout=2).send_batch(
            MAIL, [Recipient("r@example.org")])


def test_smtp_sends_each_reader_over_one_connection(tmp_path) -> None:
    from aiosmtpd import controller as aiosmtpd
    from aiosmtpd.handlers import Sink

    from digest.bootstrap import make_transport
    from tests.conftest import make_settings

    received: list[list[str]] = []
    message_ids: list[str] = []

    class Recorder(Sink):
        async def handle_DATA(self, server, session, envelope):
            received.append(list(envelope.rcpt_tos))
            for line in envelope.content.decode().splitlines():
                if line.lower().startswith("message-id:"):
                    message_ids.append(line.split(":", 1)[1].strip())
            return "250 OK"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = aiosmtpd.Controller(Recorder(), hostname="127.0.0.1", port=port)
    controller.start()
    settings = make_settings(tmp_path, mail_backend="smtp", smtp_url=f"smtp://127.0.0.1:{port}")
    try:
        make_transport(settings).send_batch(
            MAIL, [Recipient("a@example.org", "Zoë"), Recipient("b@example.org")])
    finally:
        controller.stop()
    assert received == [["a@example.org"], ["b@example.org"]]
    # Message-IDs are on the sender's domain, not the host's.
    assert len(message_ids) == 2
    assert all(m.endswith("@example.org>") for m in message_ids)


def test_sendgrid_names_drop_commas_and_semicolons() -> None:
    from digest.mail.transports.sendgrid import request_body

    mail = OutgoingMail("s", "<p>h</p>", "t", "a@example.org", "Opinion, Weekly; Digest")
    body = request_body(mail, [Recipient("r@example.org", "Smith, John; Jr.")])
    name = body["personalizations"][0]["to"][0]["name"]
    assert "," not in name and ";" not in name and "Smith" in name and "John" in name
    assert "," not in body["from"]["name"] and ";" not in body["from"]["name"]


def _smtp_server(handler):
    from aiosmtpd import controller as aiosmtpd
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = aiosmtpd.Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    return controller, port


def _interrupted_batch_of_four(handler):
    """Send r0..r3 to a local SMTP server that stops the batch; the BatchInterrupted info."""
    from digest.mail.transports.base import BatchInterrupted

    controller, port = _smtp_server(handler)
    try:
        with pytest.raises(BatchInterrupted) as info:
            SmtpTransport.from_url(f"smtp://127.0.0.1:{port}", timeout=5).send_batch(
                MAIL, [Recipient(f"r{i}@example.org") for i in range(4)])
    finally:
        controller.stop()
    return info


def test_smtp_refused_reader_is_reported_and_others_sent() -> None:
    received: list[str] = []

    class Handler:
        async def handle_RCPT(self, server, session, envelope, address, options):
            if address.startswith("gone@"):
                return "550 5.1.1 no such user"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):
            received.extend(envelope.rcpt_tos)
            return "250 OK"

    controller, port = _smtp_server(Handler())
    try:
        refused = SmtpTransport.from_url(f"smtp://127.0.0.1:{port}", timeout=5).send_batch(
            MAIL, [Recipient("a@example.org"), Recipient("gone@example.org"),
                   Recipient("b@example.org")])
    finally:
        controller.stop()
    assert received == ["a@example.org", "b@example.org"]
    assert refused and "gone@example.org" in refused[0] and "no such user" in refused[0]


def test_smtp_transient_failure_mid_batch_reports_progress() -> None:

    received: list[str] = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            if len(received) == 2:
                return "451 4.3.0 try again later"
            received.extend(envelope.rcpt_tos)
            return "250 OK"

    info = _interrupted_batch_of_four(Handler())
    assert info.value.accepted == 2 and received == ["r0@example.org", "r1@example.org"]
    assert isinstance(info.value, TransientDeliveryError)


def test_smtp_batch_stopped_by_a_time_limit_says_how_far_it_got(monkeypatch) -> None:
    """Celery's soft time limit (or any unmapped error) mid-batch must not resend readers."""
    from digest.mail.transports import smtp

    class SoftTimeLimit(Exception):
        pass

    received: list[str] = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            received.extend(envelope.rcpt_tos)
            return "250 OK"

    real_build = smtp.build_mime

    def build(mail, recipient, domain, **kw):
        if recipient.email == "r2@example.org":
            raise SoftTimeLimit("time is up")
        return real_build(mail, recipient, domain, **kw)

    monkeypatch.setattr(smtp, "build_mime", build)
    info = _interrupted_batch_of_four(Handler())
    assert info.value.accepted == 2 and received == ["r0@example.org", "r1@example.org"]
