"""The public archive: past digests in the browser, the target of "View in browser".

An edition's stored HTML still holds the reader placeholders; here they become generic,
token-free links (the signup page), so the page is the same for everyone and never shows
anyone's unsubscribe or preferences token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.config import TEMPLATES_DIR, Settings
from digest.links import archive_url, generic_substitutions, signup_url
from digest.message import personalize
from digest.models import Edition, EditionStatus, Feed, Post
from digest.render import MAX_POSTS, render_digest, sections_for
from digest.web.deps import get_app

__all__ = ["router"]

router = APIRouter(tags=["archive"])
templates = Jinja2Templates(directory=TEMPLATES_DIR / "web")

# Stored pages run no script and load only images; styles are inline.
_EDITION_CSP = "default-src 'none'; img-src https: http:; style-src 'unsafe-inline'"
_ARCHIVE_LIMIT = 200


@dataclass(frozen=True)
class ArchiveEntry:
    url: str
    subject: str
    date: str


@router.get("/archive", response_class=HTMLResponse, summary="Past digests")
def archive_index(request: Request) -> HTMLResponse:
    """The list of sent digests, newest first."""
    app = get_app(request)
    with app.sessions() as session:
        entries = [_entry(app.settings, e) for e in _sent_editions(session)]
    context = {
        "blog_name": app.settings.blog_name,
        "postal_address": app.settings.postal_address,
        "editions": entries,
        "signup_url": signup_url(app.settings),
    }
    return templates.TemplateResponse(request, "archive.html", context)


@router.get("/archive/{edition_id}", response_class=HTMLResponse, summary="One past digest")
def archive_edition(request: Request, edition_id: int) -> HTMLResponse:
    """One sent digest as its readers saw it, with generic links in place of theirs."""
    app = get_app(request)
    with app.sessions() as session:
        edition = session.get(Edition, edition_id)
        if edition is None or edition.status is not EditionStatus.SENT:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such digest")
        page = public_html(app.settings, edition, _full_html(session, app.settings, edition))
    return HTMLResponse(page, headers={"Content-Security-Policy": _EDITION_CSP})


def public_html(settings: Settings, edition: Edition, html: str | None = None) -> str:
    """The edition's HTML with every placeholder, and any stray token link, made generic."""
    page = personalize(html or edition.html, generic_substitutions(settings, edition.id))
    token_links = re.compile(
        re.escape(settings.base_url) + r"/(?:unsubscribe|preferences|confirm)/[^\"'<>\s]*"
    )
    return token_links.sub(signup_url(settings), page)


def _sent_editions(session: Session) -> list[Edition]:
    query = (
        select(Edition)
        .where(Edition.status == EditionStatus.SENT)
        .order_by(Edition.created_at.desc(), Edition.id.desc())
        .limit(_ARCHIVE_LIMIT)
    )
    return list(session.scalars(query))


def _entry(settings: Settings, edition: Edition) -> ArchiveEntry:
    when = edition.finished_at or edition.created_at
    local = when.astimezone(settings.tz)
    return ArchiveEntry(
        url=archive_url(settings, edition.id),
        subject=edition.subject or settings.blog_name,
        date=f"{local.day} {local:%B %Y}",
    )


def _full_html(session: Session, settings: Settings, edition: Edition) -> str | None:
    """A digest cut at MAX_POSTS in the mail is shown whole here (the mail links to it)."""
    ids = list(edition.post_ids or [])
    if len(ids) <= MAX_POSTS:
        return None
    posts = list(session.scalars(select(Post).where(Post.id.in_(ids))))
    if not posts:
        return None
    feeds = list(session.scalars(select(Feed).order_by(Feed.id)))
    rendered = render_digest(
        settings,
        sections_for(posts, feeds),
        period_start=edition.period_start,
        period_end=edition.period_end,
        archive_url=archive_url(settings, edition.id),
        max_posts=None,
    )
    return rendered.html
