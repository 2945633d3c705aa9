"""Mail built from hostile feed text with production settings, checked on the raw bytes.

Outbox (.eml files) and the SendGrid request body here; SMTP in
tests/mail/test_smtp_idn.py.
"""

# Turkish dotless i is part of a real reader's name here.
# ruff: noqa: RUF001

from __future__ import annotations

import email
from email.policy import default
from pathlib import Path

import pytest

from digest.mail.compose import outgoing_mail
from digest.mail.message import Recipient, build_mime
from digest.mail.render import render_digest
from digest.mail.transports.outbox import OutboxTransport
from digest.mail.transports.sendgrid import request_body
from tests.mail_hostile import (
    INJECTED_TITLES,
    INVISIBLE,
    LONG_BASE_URL,
    assert_plain_headers,
    header_block,
    hostile_feed,
    hostile_settings,
    post_with_title,
    reader,
    sections_from_feed,
)
from tests.mail_samples import sample_sections


def _outbox_bytes(settings, mail, recipients, directory: Path) -> list[bytes]:
    OutboxTransport(directory, settings.sending_domain).send_batch(mail, recipients)
    return [p.read_bytes() for p in sorted(directory.glob("*.eml"))]


@pytest.mark.parametrize("subscriber_id", [7, 1000, 123456789])
def test_list_unsubscribe_is_plain_ascii_in_the_eml(tmp_path: Path, subscriber_id: int) -> None:
    settings = hostile_settings(tmp_path)
    mail = outgoing_mail(settings, render_digest(settings, sample_sections(2)), edition_id=12345)
    one = reader(settings, subscriber_id, name="Ayşe Yılmaz")
    (raw,) = _outbox_bytes(settings, mail, [one], tmp_path / "out")
    headers = assert_plain_headers(raw)
    unsub = one.substitutions["[%unsubscribe_url%]"]
    assert unsub.startswith(f"{LONG_BASE_URL}/unsubscribe/")
    assert headers["List-Unsubscribe"] == (
        f"<{unsub}>, <mailto:unsubscribe@news.example.org?subject=unsubscribe>")
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert headers["List-Id"] == "Diplomatic Opinion <digest.news.example.org>"
    assert headers["Reply-To"] == "editor@news.example.org"
    assert headers["To"].endswith("<reader@example.com>")
    assert headers["From"].endswith("<digest@news.example.org>")


def test_long_urls_fold_only_at_whitespace(tmp_path: Path) -> None:
    settings = hostile_settings(tmp_path, base_url="https://" + "x" * 120 + ".example.org")
    mail = outgoing_mail(settings, render_digest(settings, sample_sections(1)), edition_id=1)
    one = reader(settings, 10**12)
    (raw,) = _outbox_bytes(settings, mail, [one], tmp_path / "out")
    headers = assert_plain_headers(raw)
    url = one.substitutions["[%unsubscribe_url%]"]
    assert headers["List-Unsubscribe"].startswith(f"<{url}>")


@pytest.mark.parametrize("title", INJECTED_TITLES)
def test_feed_titles_cannot_add_header_lines_in_the_eml(tmp_path: Path, title: str) -> None:
    settings = hostile_settings(tmp_path)
    mail = outgoing_mail(settings, render_digest(settings, post_with_title(title)), edition_id=1)
    (raw,) = _outbox_bytes(settings, mail, [Recipient("reader@example.com")], tmp_path / "out")
    names = [name.lower() for name, _ in header_block(raw)]
    assert "x-evil" not in names
    assert names.count("reply-to") == 1 and names.count("subject") == 1
    parsed = email.message_from_bytes(raw, policy=default)
    assert parsed["Reply-To"] == "editor@news.example.org"
    subject = str(parsed["Subject"])
    assert "\r" not in subject and "\n" not in subject
    assert parsed.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]


@pytest.mark.parametrize("title", INJECTED_TITLES)
def test_feed_titles_reach_sendgrid_decoded_once_and_clean(tmp_path: Path, title: str) -> None:
    settings = hostile_settings(tmp_path)
    mail = outgoing_mail(settings, render_digest(settings, post_with_title(title)), edition_id=1)
    body = request_body(mail, [Recipient("reader@example.com")])
    subject = body["subject"]
    assert "\r" not in subject and "\n" not in subject
    # Nothing left that a mail library would decode a second time.
    assert str(default.header_factory("Subject", subject)) == subject


def test_bidi_and_zero_width_characters_leave_headers_and_link_text(tmp_path: Path) -> None:
    settings = hostile_settings(tmp_path, from_name=f"Dip{INVISIBLE}lomatic")
    title = f"Pay{INVISIBLE}Pal \u202egnp.exe"
    mail = outgoing_mail(settings, render_digest(settings, post_with_title(title)), edition_id=1)
    zoe = Recipient("reader@example.com", f"Zo\u202eë{INVISIBLE}")
    msg = build_mime(mail, zoe, settings.sending_domain)
    parsed = email.message_from_bytes(msg.as_bytes(), policy=default)
    for name in ("Subject", "From", "To"):
        assert not set(str(parsed[name])) & set(INVISIBLE), name
    assert "PayPal gnp.exe" in str(parsed["Subject"])
    text = parsed.get_body(preferencelist=("plain",)).get_content()
    html = parsed.get_body(preferencelist=("html",)).get_content()
    assert not set(text) & set(INVISIBLE) and not set(html) & set(INVISIBLE)
    assert ">PayPal gnp.exe</a>" in html
    sendgrid = request_body(mail, [zoe])
    assert not set(sendgrid["subject"] + sendgrid["from"]["name"]) & set(INVISIBLE)


def _reader_links(settings, subscriber_id: int = 4242) -> tuple[Recipient, list[str]]:
    one = reader(settings, subscriber_id)
    private = [one.substitutions["[%unsubscribe_url%]"], one.substitutions["[%preferences_url%]"]]
    return one, private


def _counts(texts: list[str], links: list[str]) -> list[int]:
    return [sum(t.count(link) for t in texts) for link in links]


@pytest.mark.parametrize("placeholder", [
    "[%preferences_url%]", "[%unsubscribe_url%]", "&#91;%preferences_url%&#93;",
])
def test_feed_text_never_becomes_a_reader_link(tmp_path: Path, placeholder: str) -> None:
    settings = hostile_settings(tmp_path)
    one, private = _reader_links(settings)
    clean = outgoing_mail(settings, render_digest(settings, sample_sections(2)), edition_id=1)
    rendered = render_digest(settings, sections_from_feed(hostile_feed(placeholder)))
    hostile = outgoing_mail(settings, rendered, edition_id=1)
    assert "evil.example/thumb.png" in hostile.html and "evil.example/img.png" in hostile.html

    def eml(mail, name: str) -> list[str]:
        (raw,) = _outbox_bytes(settings, mail, [one], tmp_path / name)
        parsed = email.message_from_bytes(raw, policy=default)
        text = parsed.get_body(preferencelist=("plain",)).get_content()
        html = parsed.get_body(preferencelist=("html",)).get_content()
        return [str(parsed["Subject"]), text, html]

    expected = _counts(eml(clean, "clean"), private)
    assert expected == [2, 2]  # footer link in each part
    assert _counts(eml(hostile, "hostile"), private) == expected

    def sendgrid(mail) -> list[str]:  # what SendGrid makes of the request, per reader
        body = request_body(mail, [one])
        subs = body["personalizations"][0]["substitutions"]
        texts = [body["subject"]] + [c["value"] for c in body["content"]]
        for key, value in subs.items():
            texts = [t.replace(key, value) for t in texts]
        return texts

    assert _counts(sendgrid(hostile), private) == _counts(sendgrid(clean), private)


def test_feed_text_never_becomes_the_edition_link(tmp_path: Path) -> None:
    settings = hostile_settings(tmp_path)
    link = f"{LONG_BASE_URL}/archive/77"
    clean = outgoing_mail(settings, render_digest(settings, sample_sections(2)), edition_id=77)
    rendered = render_digest(settings, sections_from_feed(hostile_feed("[%archive_url%]")))
    mail = outgoing_mail(settings, rendered, edition_id=77)
    assert mail.html.count(link) == clean.html.count(link) == 1  # the footer's only
    assert link not in mail.subject


def test_a_reader_name_cannot_carry_a_placeholder_to_sendgrid(tmp_path: Path) -> None:
    settings = hostile_settings(tmp_path)
    mail = outgoing_mail(settings, render_digest(settings, sample_sections(1)), edition_id=1)
    body = request_body(mail, [Recipient("r@example.org", "Eve [%preferences_url%]")])
    assert "[%" not in body["personalizations"][0]["to"][0]["name"]
