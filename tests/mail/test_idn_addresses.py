"""Internationalised addresses: stored and written with the domain in IDNA (ASCII) form."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.mail.compose import outgoing_mail
from digest.mail.message import Recipient, ascii_address, needs_smtputf8
from digest.mail.render import render_digest
from digest.mail.transports.outbox import OutboxTransport
from digest.mail.transports.sendgrid import request_body
from digest.readers.addresses import email_hash, normalise
from tests.mail_hostile import assert_plain_headers, header_block, hostile_settings
from tests.mail_samples import sample_sections


@pytest.mark.parametrize(("typed", "stored"), [
    ("user@bücher.de", "user@xn--bcher-kva.de"),
    ("user@BÜCHER.de", "user@xn--bcher-kva.de"),
    ("user@xn--bcher-kva.de", "user@xn--bcher-kva.de"),
    ("User@XN--BCHER-KVA.DE", "User@xn--bcher-kva.de"),
    ("jörg@bücher.de", "jörg@xn--bcher-kva.de"),
    ("ada@example.com", "ada@example.com"),
])
def test_domains_are_stored_in_ascii_form(typed: str, stored: str) -> None:
    assert normalise(typed) == stored


def test_both_spellings_of_a_domain_are_one_reader() -> None:
    assert email_hash(normalise("user@bücher.de"), b"key") == email_hash(
        normalise("user@xn--bcher-kva.de"), b"key")


def test_blocked_domains_match_either_spelling() -> None:
    for address in ("x@bücher.de", "x@xn--bcher-kva.de"):
        with pytest.raises(Exception, match="cannot subscribe"):
            normalise(address, ["xn--bcher-kva.de"])
        with pytest.raises(Exception, match="cannot subscribe"):
            normalise(address, ["bücher.de"])


def test_only_a_non_ascii_local_part_needs_smtputf8() -> None:
    assert ascii_address("user@Bücher.de") == "user@xn--bcher-kva.de"
    assert not needs_smtputf8("user@bücher.de")
    assert needs_smtputf8("jörg@example.org")


def test_outbox_writes_an_idn_address_as_plain_ascii(tmp_path: Path) -> None:
    settings = hostile_settings(tmp_path)
    mail = outgoing_mail(settings, render_digest(settings, sample_sections(1)), edition_id=1)
    OutboxTransport(tmp_path / "out", settings.sending_domain).send_batch(
        mail, [Recipient("user@bücher.de"), Recipient("user@bücher.de", "Jörg Müller")])
    for path in sorted((tmp_path / "out").glob("*.eml")):
        raw = path.read_bytes()
        headers = assert_plain_headers(raw)
        assert headers["To"] in ("user@xn--bcher-kva.de",
                                 "=?utf-8?q?J=C3=B6rg_M=C3=BCller?= <user@xn--bcher-kva.de>")


def test_outbox_writes_a_non_ascii_local_part_as_utf8(tmp_path: Path) -> None:
    settings = hostile_settings(tmp_path)
    mail = outgoing_mail(settings, render_digest(settings, sample_sections(1)), edition_id=1)
    OutboxTransport(tmp_path / "out", settings.sending_domain).send_batch(
        mail, [Recipient("jörg@bücher.de")])
    (path,) = (tmp_path / "out").glob("*.eml")
    assert dict(header_block(path.read_bytes()))["To"] == "jörg@xn--bcher-kva.de"


def test_sendgrid_gets_ascii_domains() -> None:
    from digest.mail.message import OutgoingMail

    mail = OutgoingMail("s", "<p>h</p>", "t", "digest@bücher.de", "D")
    body = request_body(mail, [Recipient("user@bücher.de")])
    assert body["personalizations"][0]["to"][0]["email"] == "user@xn--bcher-kva.de"
    assert body["from"]["email"] == "digest@xn--bcher-kva.de"
