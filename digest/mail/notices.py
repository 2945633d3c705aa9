"""Render the two mails a reader gets outside the digest: confirmation and welcome.

They share the digest's layout (templates extend ``digest.html``/``digest.txt``) and its
reader placeholders, so ``mail.compose.outgoing_mail`` plus ``mail.links.recipient_for``
give them the same headers as a digest, List-Unsubscribe included.
"""

from __future__ import annotations

import re
from typing import Any

from digest.config import Settings
from digest.feeds.sanitize import safe_url
from digest.mail.links import archive_url
from digest.mail.render import (
    ARCHIVE_PLACEHOLDER,
    PLACEHOLDERS,
    RenderedEdition,
    environment,
    inline_css,
)

_POSTS_HTML = re.compile(r"<!-- posts -->(.*?)<!-- /posts -->", re.DOTALL)
_POSTS_TEXT = re.compile(r"^={10,}\n(.*?)\n_{10,}$", re.DOTALL | re.MULTILINE)


def render_confirmation(settings: Settings, confirm_url: str) -> RenderedEdition:
    """The double opt-in mail: one button to ``confirm_url`` (an http(s) URL)."""
    url = safe_url(confirm_url)
    if url is None:
        raise ValueError(f"confirmation URL must be http(s): {confirm_url!r}")
    subject = f"Confirm your subscription to {settings.blog_name}"
    return _render("confirm", settings, subject, confirm_url=url,
                   expires_hours=settings.confirm_max_age_hours)


def render_welcome(settings: Settings, latest: RenderedEdition | None = None,
                   first_digest: str = "") -> RenderedEdition:
    """The mail sent on confirmation, with the latest digest's posts when one is given.

    ``first_digest`` says when the reader's first digest is due ("Monday 30 November...").
    """
    index = archive_url(settings)
    latest_html = latest_text = ""
    if latest is not None:
        found = _POSTS_HTML.search(latest.html)
        latest_html = found.group(1).strip() if found else ""
        found = _POSTS_TEXT.search(latest.text)
        latest_text = found.group(1).rstrip() if found else ""
        latest_html = latest_html.replace(ARCHIVE_PLACEHOLDER, index)
        latest_text = latest_text.replace(ARCHIVE_PLACEHOLDER, index)
    subject = f"Welcome to {settings.blog_name}"
    rendered = _render(
        "welcome", settings, subject, latest_html=latest_html, latest_text=latest_text,
        first_digest=first_digest,
    )
    count = latest.post_count if latest is not None and latest_html else 0
    return RenderedEdition(rendered.subject, rendered.html, rendered.text, count)


def _render(name: str, settings: Settings, subject: str, **extra: Any) -> RenderedEdition:
    context: dict[str, Any] = {
        "subject": subject,
        "blog_name": settings.blog_name,
        "blog_url": None,
        "postal_address": settings.postal_address,
        "archive_url": archive_url(settings),
        "tz": settings.tz,
        **PLACEHOLDERS,
        **extra,
    }
    env = environment()
    html = inline_css(env.get_template(f"{name}.html").render(context))
    text = env.get_template(f"{name}.txt").render(context)
    return RenderedEdition(subject=subject, html=html, text=text, post_count=0)
