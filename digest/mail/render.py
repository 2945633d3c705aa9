"""Render a digest once into subject, HTML and plain text, with per-reader placeholders.

Jinja runs once per edition; each reader's links are filled in afterwards by plain string
replacement (``digest.mail.message.personalize``) or by SendGrid substitutions. The edition's own
view-in-browser link is a placeholder too (``ARCHIVE_PLACEHOLDER``), filled by
``digest.mail.compose.outgoing_mail`` once the edition has an id.

Everything from a feed passes ``digest.feeds.sanitize`` first: titles and summaries become plain
text (the templates escape them), links and thumbnails are kept only if they are http(s).
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import css_inline
from jinja2 import Environment, FileSystemLoader, select_autoescape

from digest.config import TEMPLATES_DIR, Settings
from digest.errors import ConfigError
from digest.feeds.sanitize import plain_text, safe_url
from digest.store.models import Feed, Post

PLACEHOLDERS = {
    "unsubscribe_url": "[%unsubscribe_url%]",
    "preferences_url": "[%preferences_url%]",
}
# Per edition, not per reader: replaced once by ``digest.mail.compose.outgoing_mail``.
ARCHIVE_PLACEHOLDER = "[%archive_url%]"
# More posts than this and the rest is left to the archive (Gmail clips HTML at ~102 KB).
MAX_POSTS = 20
UNTITLED = "(untitled)"


@dataclass(frozen=True)
class PostView:
    title: str
    link: str
    summary: str
    thumbnail_url: str | None = None
    reading_minutes: int = 1
    published_at: datetime | None = None


@dataclass(frozen=True)
class FeedSection:
    title: str
    site_url: str | None
    posts: Sequence[PostView] = field(default_factory=list)


@dataclass(frozen=True)
class RenderedEdition:
    subject: str
    html: str
    text: str
    post_count: int


def post_view(post: Post) -> PostView:
    """The template's view of a stored post."""
    return PostView(
        title=post.title,
        link=post.link,
        summary=post.summary,
        thumbnail_url=post.thumbnail_url,
        reading_minutes=post.reading_minutes,
        published_at=post.published_at,
    )


def sections_for(posts: Sequence[Post], feeds: Sequence[Feed]) -> list[FeedSection]:
    """Group posts by feed, newest first within each feed, feeds in the given order."""
    sections = []
    for feed in feeds:
        own = [p for p in posts if p.feed_id == feed.id]
        if own:
            own.sort(key=lambda p: (p.published_at or p.first_seen_at), reverse=True)
            sections.append(
                FeedSection(feed.title or feed.url, feed.site_url, [post_view(p) for p in own])
            )
    return sections


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The Jinja environment for mail templates (HTML autoescaped, text not)."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(enabled_extensions=("html",), default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["day"] = _format_day
    return env


def inline_css(html: str) -> str:
    """Inline the <style> rules into style attributes, keeping only @media in a <style>."""
    inliner = css_inline.CSSInliner(
        keep_at_rules=True, load_remote_stylesheets=False, minify_css=True
    )
    return str(inliner.inline(html))


def safe_post(post: PostView) -> PostView:
    """A post with plain-text title and summary and only http(s) link and thumbnail."""
    return replace(
        post,
        title=plain_text(post.title) or UNTITLED,
        summary=plain_text(post.summary),
        link=safe_url(post.link) or "",
        thumbnail_url=safe_url(post.thumbnail_url),
        reading_minutes=max(1, post.reading_minutes or 1),
    )


def safe_sections(sections: Iterable[FeedSection]) -> list[FeedSection]:
    """Sections with every post made safe, feed titles as text and site URLs http(s)."""
    return [
        FeedSection(
            plain_text(s.title) or UNTITLED,
            safe_url(s.site_url),
            [safe_post(p) for p in s.posts],
        )
        for s in sections
        if s.posts
    ]


class _SubjectFormatter(string.Formatter):
    """str.format limited to plain names: no attribute or index lookups from a template."""

    def get_field(self, field_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        if not field_name.isidentifier():
            raise KeyError(field_name)
        return super().get_field(field_name, args, kwargs)


def make_subject(settings: Settings, sections: Sequence[FeedSection]) -> str:
    """The subject from DIGEST_SUBJECT_TEMPLATE: {blog}, {lead}, {more}, {count}."""
    posts = [p for s in sections for p in s.posts]
    if not posts:
        return settings.blog_name
    more = f" (+{len(posts) - 1} more)" if len(posts) > 1 else ""
    lead = plain_text(posts[0].title) or UNTITLED
    try:
        subject = _SubjectFormatter().format(
            settings.subject_template,
            blog=settings.blog_name, lead=lead, more=more, count=len(posts),
        )
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"DIGEST_SUBJECT_TEMPLATE: {settings.subject_template!r} is not a valid template; "
            "use {blog}, {lead}, {more} and {count}"
        ) from exc
    return " ".join(subject.split())


def render_digest(
    settings: Settings,
    sections: Sequence[FeedSection],
    *,
    period_start: datetime | None = None,
    period_end: datetime | None = None,
    archive_url: str | None = None,
    max_posts: int | None = MAX_POSTS,
) -> RenderedEdition:
    """Render one edition; the result still holds the reader placeholders.

    Without ``archive_url`` the view-in-browser link is ``ARCHIVE_PLACEHOLDER``. At most
    ``max_posts`` posts are shown (None: all); the footer links to the archive for the rest.
    """
    clean = safe_sections(sections)
    total = sum(len(s.posts) for s in clean)
    shown = _first_posts(clean, max_posts)
    posts = [p for s in shown for p in s.posts]
    subject = make_subject(settings, clean)
    context: dict[str, Any] = {
        "blog_name": settings.blog_name,
        "blog_url": shown[0].site_url if len(shown) == 1 else None,
        "date_range": _date_range(posts, period_start, period_end, settings.tz),
        "sections": shown,
        "grouped": len(shown) > 1,
        "post_count": total,
        "hidden_count": total - len(posts),
        "preheader": _preheader(posts),
        "subject": subject,
        "tz": settings.tz,
        **_footer_context(settings, archive_url),
    }
    env = environment()
    html = inline_css(env.get_template("digest.html").render(context))
    text = env.get_template("digest.txt").render(context)
    return RenderedEdition(subject=subject, html=html, text=text, post_count=total)


def _footer_context(settings: Settings, archive_url: str | None) -> dict[str, str]:
    return {
        "postal_address": settings.postal_address,
        "archive_url": archive_url or ARCHIVE_PLACEHOLDER,
        **PLACEHOLDERS,
    }


def _first_posts(sections: list[FeedSection], limit: int | None) -> list[FeedSection]:
    if limit is None:
        return sections
    kept: list[FeedSection] = []
    room = max(0, limit)
    for section in sections:
        if room == 0:
            break
        posts = list(section.posts[:room])
        room -= len(posts)
        kept.append(replace(section, posts=posts))
    return kept


def _format_day(value: datetime | None, tz: ZoneInfo | None = None) -> str:
    """10 January 2022 (no locale dependence, no leading zero)."""
    if value is None:
        return ""
    if tz is not None and value.tzinfo is not None:
        value = value.astimezone(tz)
    return f"{value.day} {value:%B %Y}"


def _date_range(
    posts: Sequence[PostView], start: datetime | None, end: datetime | None, tz: ZoneInfo
) -> str:
    dates = [p.published_at for p in posts if p.published_at is not None]
    start = start or (min(dates) if dates else None)
    end = end or (max(dates) if dates else None)
    if start is None or end is None:
        return ""
    first, last = (d.astimezone(tz) if d.tzinfo else d for d in (start, end))
    if last > first and last.time() == time(0):
        last -= timedelta(microseconds=1)  # a period ending at midnight ends the day before
    if first.date() >= last.date():
        return _format_day(last)
    if (first.year, first.month) == (last.year, last.month):
        return f"{first.day}\u2013{_format_day(last)}"
    if first.year == last.year:
        return f"{first.day} {first:%B} \u2013 {_format_day(last)}"
    return f"{_format_day(first)} \u2013 {_format_day(last)}"


def _preheader(posts: Sequence[PostView]) -> str:
    """The inbox snippet adds to the subject (which names the first post), never repeats it."""
    if len(posts) <= 1:
        text = posts[0].summary if posts else ""
    else:
        text = "Also: " + " \u00b7 ".join(p.title for p in posts[1:4])
    return text if len(text) <= 140 else text[:139].rsplit(" ", 1)[0] + "\u2026"
