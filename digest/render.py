"""Render a digest once into subject, HTML and plain text, with per-reader placeholders.

Jinja runs once per edition; each reader's links are filled in afterwards by plain string
replacement (``digest.message.personalize``) or by SendGrid substitutions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import css_inline
from jinja2 import Environment, FileSystemLoader, select_autoescape

from digest.config import TEMPLATES_DIR, Settings
from digest.models import Feed, Post

PLACEHOLDERS = {
    "unsubscribe_url": "[%unsubscribe_url%]",
    "preferences_url": "[%preferences_url%]",
}


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


def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(enabled_extensions=("html", "j2.html"), default=False),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def make_subject(settings: Settings, sections: Sequence[FeedSection]) -> str:
    posts = [p for s in sections for p in s.posts]
    if not posts:
        return settings.blog_name
    more = f" (+{len(posts) - 1} more)" if len(posts) > 1 else ""
    return settings.subject_template.format(blog=settings.blog_name, lead=posts[0].title,
                                            more=more, count=len(posts))


def render_digest(
    settings: Settings,
    sections: Sequence[FeedSection],
    *,
    period_start: datetime | None = None,
    period_end: datetime | None = None,
    archive_url: str | None = None,
) -> RenderedEdition:
    """Render one edition; the result still holds the reader placeholders."""
    env = _environment()
    context = {
        "settings": settings,
        "blog_name": settings.blog_name,
        "sections": sections,
        "period_start": period_start,
        "period_end": period_end,
        "archive_url": archive_url,
        "postal_address": settings.postal_address,
        **PLACEHOLDERS,
    }
    html = env.get_template("digest.html").render(context)
    html = css_inline.CSSInliner(keep_style_tags=True).inline(html)
    text = env.get_template("digest.txt").render(context)
    return RenderedEdition(
        subject=make_subject(settings, sections),
        html=html,
        text=text,
        post_count=sum(len(s.posts) for s in sections),
    )
