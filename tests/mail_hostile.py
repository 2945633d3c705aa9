"""Hostile feed input and production-like settings, shared by the unit and SMTP mail tests."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from digest.config import Settings
from digest.feeds.parse import parse_feed
from digest.feeds.summaries import summarize
from digest.mail.links import list_unsubscribe_headers
from digest.mail.message import Recipient
from digest.mail.render import FeedSection, PostView
from tests.conftest import make_settings

# About 40 characters of https base URL, as in production.
LONG_BASE_URL = "https://newsletter.diplomaticopinion-mail.com"
# Headers that carry a URL or an address: never an encoded-word, folded only at whitespace.
PLAIN_HEADERS = ("From", "To", "Reply-To", "Message-ID", "List-Id", "List-Unsubscribe",
                 "List-Unsubscribe-Post")
INJECTED_TITLES = [
    "=?utf-8?q?=0D=0AReply-To=3A_x=40evil.example?=",
    "Hello =?utf-8?q?=0D=0AX-Evil=3A_1=0D=0A=0D=0Abody?= world",
    # An encoded-word that decodes to another encoded-word holding CR/LF.
    "=?utf-8?q?=3D=3Futf-8=3Fq=3F=3D0D=3D0AReply-To=3D3A_x=3D40evil.example=3F=3D?=",
    "Raw\r\nReply-To: x@evil.example\r\n\r\nbody",
    "Raw\nX-Evil: 1",
]
# Bidi overrides and zero-width characters that must not reach a header or link text.
INVISIBLE = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f" \
            "\u200b\u200c\u200d\u2060\ufeff"


def hostile_settings(tmp_path: Path, **overrides: object) -> Settings:
    """Production-like: a ~40-character https base URL and an unsubscribe mailto."""
    values: dict[str, object] = {
        "base_url": LONG_BASE_URL,
        "unsubscribe_mailto": "unsubscribe@news.example.org",
        "reply_to": "editor@news.example.org",
    }
    values.update(overrides)
    return make_settings(tmp_path, **values)


def reader(settings: Settings, subscriber_id: int, email: str = "reader@example.com",
           name: str | None = None) -> Recipient:
    """A reader with private links shaped like real ones (id, key, 27-character signature)."""
    token = f"{subscriber_id}.k{subscriber_id:x}Yz.{'s' * 27}"
    unsub = f"{settings.base_url}/unsubscribe/{token}"
    prefs = f"{settings.base_url}/preferences/{token}"
    return Recipient(email, name, subscriber_id,
                     {"[%unsubscribe_url%]": unsub, "[%preferences_url%]": prefs},
                     list_unsubscribe_headers(settings, unsub))


def header_block(raw: bytes) -> list[tuple[str, str]]:
    """The top-level headers of a raw message, unfolded (CRLF before WSP removed), in order."""
    head = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[0].decode("utf-8")
    lines = re.split(r"\r?\n", head)
    fields: list[tuple[str, str]] = []
    for line in lines:
        if line[:1] in (" ", "\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + line)
        else:
            name, _, value = line.partition(":")
            fields.append((name, value.lstrip(" ")))
    return fields


def assert_plain_headers(raw: bytes) -> dict[str, str]:
    """Every URL/address header is plain ASCII, no encoded-word, folded only at whitespace."""
    fields = header_block(raw)
    found = {name: value for name, value in fields}
    for name in PLAIN_HEADERS:
        if name not in found:
            continue
        value = found[name]
        if name in ("From", "To"):  # a display name may be encoded; never the address
            value = value.rsplit("<", 1)[-1] if "<" in value else value
        assert "=?" not in value, f"{name} is RFC 2047 encoded: {value!r}"
        assert value.isascii(), f"{name} is not ASCII: {value!r}"
    head = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[0]
    assert all(len(line) <= 998 for line in head.splitlines())
    return found


def hostile_feed(placeholder: str) -> bytes:
    """An RSS feed putting ``placeholder`` in every field a feed controls."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"
     xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel>
<title>Feed {placeholder}</title>
<link>https://evil.example/site?x={placeholder}</link>
<description>d</description>
<item>
<title>Title {placeholder}</title>
<link>https://evil.example/post?u={placeholder}</link>
<guid>https://evil.example/post/1</guid>
<pubDate>Mon, 10 Jan 2022 09:00:00 +0000</pubDate>
<media:thumbnail url="https://evil.example/thumb.png?t={placeholder}"/>
<description>Summary {placeholder} text</description>
</item>
<item>
<title>Second</title>
<link>https://evil.example/post2</link>
<guid>https://evil.example/post/2</guid>
<pubDate>Sun, 09 Jan 2022 09:00:00 +0000</pubDate>
<content:encoded><![CDATA[<p>Body {placeholder}</p>
<img src="https://evil.example/img.png?i={placeholder}" width="600" height="400">
]]></content:encoded>
</item>
</channel>
</rss>""".encode()


def sections_from_feed(content: bytes) -> list[FeedSection]:
    """The sections a real poll would render: feedparser, then the summaries."""
    parsed = parse_feed(content, "https://evil.example/feed")
    posts = []
    for entry in parsed.entries:
        summary = summarize(entry.content_html, entry.description_html,
                            media_thumbnail=entry.thumbnail_url)
        posts.append(PostView(
            title=entry.title, link=entry.link, summary=summary.text,
            thumbnail_url=summary.thumbnail_url, reading_minutes=summary.reading_minutes,
            published_at=entry.published_at or datetime(2022, 1, 10, tzinfo=UTC),
        ))
    return [FeedSection(parsed.title or "", parsed.site_url, posts)]


def post_with_title(title: str) -> list[FeedSection]:
    post = PostView(title=title, link="https://blog.example/p/1", summary="s",
                    published_at=datetime(2022, 1, 10, tzinfo=UTC))
    return [FeedSection("Blog", "https://blog.example", [post])]
