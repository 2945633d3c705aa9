"""Messages as readers receive them: headers, parts, Unicode and injection, through the .eml."""

# Turkish dotless i and en dashes are the point of these tests.
# ruff: noqa: RUF001

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from digest.mail.compose import outgoing_mail
from digest.mail.message import OutgoingMail, Recipient, build_mime, reader_headers
from digest.mail.notices import render_confirmation, render_welcome
from digest.mail.render import FeedSection, PostView, render_digest
from digest.tokens import Purpose, Tokens
from tests.conftest import make_settings
from tests.mail_samples import LEAD_LINK, LEAD_TITLE, parse_eml, parts, sample_sections, write_eml


@pytest.fixture
def settings(tmp_path: Path):
    return make_settings(tmp_path, reply_to="editor@news.example.org",
                         unsubscribe_mailto="unsubscribe@news.example.org")


def _tokens(settings) -> Tokens:
    return Tokens(settings.secret_key.get_secret_value())


def test_digest_headers_are_present_and_correct(settings, tmp_path: Path) -> None:
    rendered = render_digest(settings, sample_sections(3))
    msg = parse_eml(write_eml(settings, rendered, tmp_path / "out", name="Ayşe Yılmaz",
                              subscriber_id=42, edition_id=9))
    assert msg["Subject"] == "Diplomatic Opinion: Russia-West Negotiations Start (+2 more)"
    assert msg["From"].addresses[0].display_name == "Diplomatic Opinion"
    assert msg["From"].addresses[0].addr_spec == "digest@news.example.org"
    assert msg["To"].addresses[0].display_name == "Ayşe Yılmaz"
    assert msg["Reply-To"] == "editor@news.example.org"
    assert abs(parsedate_to_datetime(msg["Date"]) - datetime.now(UTC)).total_seconds() < 60
    assert msg["Message-ID"].startswith("<") and msg["Message-ID"].endswith("@news.example.org>")
    assert msg["List-Id"] == "Diplomatic Opinion <digest.news.example.org>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https, mailto = [t.strip().strip("<>") for t in msg["List-Unsubscribe"].split(",")]
    assert https.startswith("https://news.example.org/unsubscribe/")
    assert _tokens(settings).read(Purpose.UNSUBSCRIBE, https.rsplit("/", 1)[1]).subscriber_id == 42
    assert mailto == "mailto:unsubscribe@news.example.org?subject=unsubscribe"
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    text, html = parts(msg)
    assert https in text and f'href="{https}"' in html  # the visible link is the header's
    assert "https://news.example.org/preferences/" in html
    assert "https://news.example.org/archive/9" in html and "archive/9" in text
    assert "[%" not in text + html + str(msg)


def test_headers_without_optional_settings(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    msg = parse_eml(write_eml(settings, render_digest(settings, sample_sections(1)), tmp_path))
    assert msg["Reply-To"] is None
    assert str(msg["List-Unsubscribe"]).strip().startswith("<https://news.example.org/unsubscribe/")
    assert "mailto:" not in msg["List-Unsubscribe"]


def test_unicode_reaches_the_eml_intact(settings, tmp_path: Path) -> None:
    title = "Şğıİ çöü: مفاوضات روسيا والغرب 🕊️ 🎉"
    summary = "Türkçe: ılık İstanbul şehri, ağaç. עברית ועוד. Emoji 🌍👩‍💻."
    post = PostView(title=title, link="https://example.com/yazı/ş", summary=summary)
    rendered = render_digest(settings, [FeedSection("Blog", None, [post])])
    path = write_eml(settings, rendered, tmp_path, name="İlkay Şahin")
    raw = path.read_bytes()
    assert all(b < 128 for b in raw), "the .eml must be 7-bit clean (RFC 2047 / QP)"
    msg = parse_eml(path)
    assert msg["Subject"] == f"Diplomatic Opinion: {title}"
    assert msg["To"].addresses[0].display_name == "İlkay Şahin"
    text, html = parts(msg)
    for part in (text, html):
        assert title in part and summary in part
    assert 'href="https://example.com/yazı/ş"' in html


def test_script_handlers_and_javascript_links_are_neutralised(settings, tmp_path: Path) -> None:
    post = PostView(
        title='<script>alert("x")</script>Safe <img src=x onerror="alert(1)">title',
        link="javascript:alert('link')",
        summary='<p onmouseover="evil()">Hi</p><a href="javascript:alert(2)">there</a>',
        thumbnail_url="data:text/html;base64,PHNjcmlwdD4=",
    )
    good = PostView(title="Good", link="https://example.com/good",
                    summary="<script>document.write('x')</script>Fine",
                    thumbnail_url="JAVASCRIPT:alert(3)")
    rendered = render_digest(settings, [FeedSection("Blog", None, [post, good])])
    msg = parse_eml(write_eml(settings, rendered, tmp_path))
    text, html = parts(msg)
    for part in (text, html, msg["Subject"]):
        lowered = part.lower()
        for bad in ("<script", "onerror", "onmouseover", "javascript:", "data:text", "alert("):
            assert bad not in lowered, (bad, part[:200])
    assert "Safe title" in html and "Hi there" in text
    assert msg["Subject"] == "Diplomatic Opinion: Safe title (+1 more)"


def test_cr_lf_cannot_inject_headers(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, from_name="Diplomatic\r\nBcc: victim@example.com", blog_name="Blog\nX-Evil: 1",
        reply_to="editor@news.example.org\r\nBcc: a@example.com",
    )
    post = PostView(title="Title\r\nBcc: everyone@example.com\r\n\r\n<b>body</b>",
                    link="https://example.com/\r\nX-Injected: yes", summary="s")
    rendered = render_digest(settings, [FeedSection("Blog", None, [post])])
    path = write_eml(settings, rendered, tmp_path, name="Reader\r\nCc: other@example.com")
    msg = parse_eml(path)
    for header in ("Bcc", "Cc", "X-Evil", "X-Injected"):
        assert msg[header] is None
    assert "\n" not in msg["Subject"] and "\r" not in msg["Subject"]
    assert msg["Subject"].startswith("Blog X-Evil: 1: Title Bcc: everyone@example.com")
    _, html = parts(msg)
    assert "X-Injected" not in html  # the unsafe link was dropped, the title kept as text


def test_reader_headers_cannot_replace_the_messages_own() -> None:
    mail = OutgoingMail(subject="s", html="h", text="t", from_email="a@b.org", from_name="A",
                        headers={"List-Id": "L <l.b.org>", "From": "evil@x.org",
                                 "Bad Name": "x", "X-Ok": "fine\r\nBcc: x@y.org"})
    reader = Recipient(email="r@b.org", headers={"Subject": "hijack", "Message-ID": "<x@y>"})
    assert reader_headers(mail, reader) == {"List-Id": "L <l.b.org>", "X-Ok": "fine Bcc: x@y.org"}
    msg = build_mime(mail, reader, "b.org")
    assert msg["From"] == "A <a@b.org>" and msg["Subject"] == "s"


def test_a_test_copy_without_reader_links_gets_generic_ones(settings) -> None:
    mail = outgoing_mail(settings, render_digest(settings, sample_sections(2)), edition_id=3)
    msg = build_mime(mail, Recipient(email="operator@example.com"), settings.sending_domain)
    body = msg.as_string()
    assert "[%" not in body
    assert msg["List-Unsubscribe"] is None and msg["List-Unsubscribe-Post"] is None
    text, html = parts(msg)
    assert "Unsubscribe: https://news.example.org/\n" in text
    assert "https://news.example.org/archive/3" in html


def test_outgoing_mail_carries_sender_tags_and_archive_link(settings) -> None:
    mail = outgoing_mail(settings, render_digest(settings, sample_sections(1)), edition_id=12)
    assert mail.from_name == "Diplomatic Opinion" and mail.reply_to == "editor@news.example.org"
    assert mail.headers == {"List-Id": "Diplomatic Opinion <digest.news.example.org>"}
    assert mail.custom_args == {"kind": "digest", "edition_id": "12"}
    assert mail.categories == ("digest",)
    assert "[%archive_url%]" not in mail.html + mail.text
    assert "[%unsubscribe_url%]" in mail.html  # still per reader


@pytest.mark.parametrize("kind", ["confirmation", "welcome"])
def test_confirmation_and_welcome_carry_the_same_headers(settings, tmp_path: Path,
                                                         kind: str) -> None:
    if kind == "confirmation":
        rendered = render_confirmation(settings, "https://news.example.org/confirm/tok")
    else:
        rendered = render_welcome(settings, render_digest(settings, sample_sections(2)))
    msg = parse_eml(write_eml(settings, rendered, tmp_path, edition_id=None))
    for header in ("From", "Date", "Message-ID", "List-Id", "List-Unsubscribe",
                   "List-Unsubscribe-Post", "Reply-To"):
        assert msg[header], header
    assert str(msg["List-Unsubscribe"]).strip().startswith("<https://news.example.org/unsubscribe/")
    text, html = parts(msg)
    assert "[%" not in text + html
    if kind == "welcome":
        assert LEAD_TITLE in html and LEAD_LINK in text
        assert "https://news.example.org/archive" in text
