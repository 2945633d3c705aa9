"""Turn fetched feed bytes into entries with a stable identity, or refuse them.

feedparser does the parsing (RSS 0.9x/1.0/2.0, Atom, broken XML, odd encodings). Around it:
entity declarations are stripped before parsing so a "billion laughs" document cannot blow up
memory or time; ``bozo`` is only a warning; a document without usable entries is refused with
``FeedParseError`` so nothing stored is touched; and each entry gets an identity that survives
polls, a domain move (WordPress guids keep the old host) and tracking query strings.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import feedparser

from digest.errors import FeedParseError
from digest.feeds.categories import categories_of
from digest.feeds.identity import clean_link, entry_identity

# A DOCTYPE with an internal subset (where ENTITY declarations live), near the top.
_DOCTYPE_OPEN = re.compile(rb"<!DOCTYPE[^\[>]*\[", re.IGNORECASE)


_SUBSET_CLOSE = re.compile(rb"\]\s*>")


_ENTITY_DECL = re.compile(rb"<!ENTITY", re.IGNORECASE)


_WP_GUID = re.compile(r"[?&]p=\d+")


@dataclass(frozen=True)
class ParsedEntry:
    """One feed entry, reduced to what digest stores."""

    identity: str
    guid: str | None
    link: str
    title: str
    content_html: str  # the fullest body the feed gives (content:encoded, else description)
    description_html: str  # the feed's own excerpt, "" when it only repeats the content
    published_at: datetime | None
    author: str | None
    thumbnail_url: str | None  # media:thumbnail, the featured image
    categories: tuple[str, ...] = ()  # <category> values, cleaned (``feeds.categories``)


@dataclass(frozen=True)
class ParsedFeed:
    """A parsed document: channel facts plus its entries, newest first as the feed lists them."""

    title: str | None
    site_url: str | None
    self_url: str | None
    hub_url: str | None
    wordpress: bool
    entries: list[ParsedEntry]
    warning: str | None  # feedparser's bozo exception, kept for the operator


def parse_feed(content: bytes, url: str, headers: Mapping[str, str] | None = None) -> ParsedFeed:
    """Parse fetched bytes; relative links resolve against ``url`` (or Content-Location)."""
    response_headers = {k.lower(): v for k, v in (headers or {}).items()}
    response_headers.setdefault("content-location", url)
    response_headers.setdefault("content-type", "application/xml")
    warning: str | None = None
    safe, stripped = _strip_entity_declarations(content, url)
    if stripped:
        warning = "the DOCTYPE and its entity declarations were removed before parsing"
    try:
        data: Any = feedparser.parse(safe, response_headers=response_headers)
    except Exception as exc:  # feedparser is not supposed to raise, but input is hostile
        raise FeedParseError(url, f"the document could not be parsed: {exc}") from exc
    if data.get("bozo"):
        bozo = f"{type(data.get('bozo_exception')).__name__}: {data.get('bozo_exception')}"
        warning = f"{warning}; {bozo}" if warning else bozo
    entries = _unique([e for e in (_entry(raw) for raw in data.entries) if e is not None])
    if not entries and (data.get("bozo") or not data.get("version")):
        raise FeedParseError(
            url, f"not a feed with usable entries ({warning or 'unknown format'}); nothing changed"
        )
    feed = data.feed
    links = feed.get("links", [])
    return ParsedFeed(
        title=_text(feed.get("title")) or None,
        site_url=_text(feed.get("link")) or None,
        self_url=_rel(links, "self"),
        hub_url=_rel(links, "hub"),
        wordpress=_is_wordpress(feed, entries),
        entries=entries,
        warning=warning,
    )


def _strip_entity_declarations(content: bytes, url: str) -> tuple[bytes, bool]:
    """Remove a DOCTYPE's internal subset, so no entity can be expanded at all."""
    doctype = _DOCTYPE_OPEN.search(content[:4096])
    if doctype is not None:
        end = _SUBSET_CLOSE.search(content, doctype.end())
        if end is None:
            raise FeedParseError(url, "the DOCTYPE is never closed; refused")
        content = content[: doctype.start()] + content[end.end() :]
    if _ENTITY_DECL.search(content[:65536]):
        raise FeedParseError(url, "the document declares XML entities; refused")
    return content, doctype is not None


def _entry(raw: Any) -> ParsedEntry | None:
    title = _text(raw.get("title"))
    link = _text(raw.get("feedburner_origlink") or raw.get("link"))
    contents = raw.get("content") or []
    content_html = "".join(str(c.get("value", "")) for c in contents[:1])
    summary = _text(raw.get("summary"))
    description = "" if summary == content_html else summary
    body = content_html or summary
    if not (title or link or body):
        return None
    guid = _text(raw.get("id")) or None
    if guid is not None and raw.get("guidislink") and not link:
        link = guid
    if not link and guid and guid.startswith(("http://", "https://")):
        link = guid
    return ParsedEntry(
        identity=entry_identity(guid, link, title, body),
        guid=guid,
        link=clean_link(link) if link else "",
        title=title,
        content_html=body,
        description_html=description,
        published_at=_date(raw.get("published_parsed") or raw.get("updated_parsed")),
        author=_text(raw.get("author")) or None,
        thumbnail_url=_thumbnail(raw),
        categories=tuple(categories_of(raw.get("tags") or [])),
    )


def _unique(entries: list[ParsedEntry]) -> list[ParsedEntry]:
    seen: set[str] = set()
    out: list[ParsedEntry] = []
    for entry in entries:
        if entry.identity not in seen:
            seen.add(entry.identity)
            out.append(entry)
    return out


def _thumbnail(raw: Any) -> str | None:
    for thumb in raw.get("media_thumbnail") or []:
        url = _text(thumb.get("url"))
        if url:
            return url
    return None


def _date(parsed: Any) -> datetime | None:
    if not parsed:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def _rel(links: list[Any], rel: str) -> str | None:
    for link in links:
        if link.get("rel") == rel and link.get("href"):
            return str(link["href"])
    return None


def _is_wordpress(feed: Any, entries: list[ParsedEntry]) -> bool:
    generator = _text(feed.get("generator")) + " " + _text(
        (feed.get("generator_detail") or {}).get("href")
    )
    if "wordpress" in generator.lower():
        return True
    return any(e.guid and _WP_GUID.search(e.guid) for e in entries)


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""
