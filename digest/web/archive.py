"""The public archive: past digests in the browser, the target of "View in browser".

An edition's stored HTML still holds the reader placeholders; here they become generic,
token-free links (the signup page), so the page is the same for everyone and never shows
anyone's unsubscribe or preferences token. The mail's footer (written to a subscriber:
"you are receiving this", unsubscribe, preferences, view in browser) is replaced by the
archive's own header and footer: back to the archive, subscribe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.config import Settings
from digest.delivery.archive import public_edition, public_editions
from digest.mail.links import archive_url, generic_substitutions, signup_url
from digest.mail.message import personalize
from digest.mail.render import MAX_POSTS, render_digest, sections_for
from digest.readers.mails import blog_url
from digest.store.models import MAX_ID, Edition, Feed, Post
from digest.web.deps import get_app
from digest.web.pages import error_page, templates

__all__ = ["router"]

router = APIRouter(tags=["archive"])

# Stored pages run no script and load only images; styles are inline.
_EDITION_CSP = "default-src 'none'; img-src https: http:; style-src 'unsafe-inline'"
_ARCHIVE_LIMIT = 200
_FOOTER = re.compile(r'(<td[^>]*class="footer"[^>]*>).*?(</td>)', re.DOTALL)
_BODY_OPEN = re.compile(r"<body[^>]*>")
_ARCHIVE_BAR = ("padding: 14px 16px; text-align: center; font-family: -apple-system, "
                "'Segoe UI', Roboto, Helvetica, Arial, sans-serif; font-size: 15px; "
                "line-height: 20px; color: #5f6368;")
_BAR_LINK = "display: inline-block; padding: 12px 8px; color: inherit; font-weight: bold;"


@dataclass(frozen=True)
class ArchiveEntry:
    url: str
    subject: str
    date: str


@router.get("/archive", response_class=HTMLResponse, summary="Past digests")
def archive_index(request: Request) -> HTMLResponse:
    """The list of sent digests, newest first, each set of posts once."""
    app = get_app(request)
    with app.sessions() as session:
        entries = [_entry(app.settings, e) for e in public_editions(session, _ARCHIVE_LIMIT)]
    context = {
        "blog_name": app.settings.blog_name,
        "postal_address": app.settings.postal_address,
        "editions": entries,
        "signup_url": signup_url(app.settings),
        "blog_url": blog_url(app),
    }
    return templates.TemplateResponse(request, "archive.html", context)


@router.get("/archive/{edition_id}", response_class=HTMLResponse, summary="One past digest",
            responses={404: {"description": "No such digest (an HTML page)"}})
def archive_edition(request: Request, edition_id: str) -> HTMLResponse:
    """One sent digest as its readers saw it, with generic links in place of theirs."""
    app = get_app(request)
    number = _edition_number(edition_id)
    with app.sessions() as session:
        edition = public_edition(session, number) if number is not None else None
        if edition is None:
            return error_page(request, 404, "No such digest",
                              "This digest does not exist or has not been sent yet.")
        page = public_html(app.settings, edition, _full_html(session, app.settings, edition))
    page = archive_frame(app.settings, page)
    return HTMLResponse(page, headers={"Content-Security-Policy": _EDITION_CSP})


def _edition_number(text: str) -> int | None:
    """The id in the URL, or None for anything that cannot be an edition's id."""
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        return None
    number = int(text)
    return number if 0 < number <= MAX_ID else None


def archive_frame(settings: Settings, page: str) -> str:
    """The archive's own header and footer around an edition, inside a <main> landmark.

    The mail's footer speaks to one subscriber; on the public page it becomes "back to the
    archive" and "subscribe" (and the postal address, when set).
    """
    back = escape(archive_url(settings))
    join = escape(signup_url(settings))
    bar = (f'<p style="margin: 0;"><a href="{back}" style="{_BAR_LINK}">&larr; All past digests'
           f'</a> &middot; <a href="{join}" style="{_BAR_LINK}">Subscribe to '
           f"{escape(settings.blog_name)}</a></p>")
    address = (f'<p style="margin: 0;">{escape(settings.postal_address)}</p>'
               if settings.postal_address.strip() else "")
    page = _FOOTER.sub(lambda m: m.group(1) + bar + address + m.group(2), page, count=1)
    # class "footer": the edition's own dark-scheme rule recolours it like the footer.
    header = f'<header class="footer" style="{_ARCHIVE_BAR}">{bar}</header>'
    page = _BODY_OPEN.sub(lambda m: m.group(0) + header + "<main>", page, count=1)
    return page.replace("</body>", "</main></body>", 1)


def public_html(settings: Settings, edition: Edition, html: str | None = None) -> str:
    """The edition's HTML with every placeholder, and any stray token link, made generic."""
    page = personalize(html or edition.html, generic_substitutions(settings, edition.id))
    token_links = re.compile(
        re.escape(settings.base_url) + r"/(?:unsubscribe|preferences|confirm)/[^\"'<>\s]*"
    )
    return token_links.sub(signup_url(settings), page)


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
