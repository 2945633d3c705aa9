"""The next digest of a cadence exactly as a reader would see it now: for the console's preview.

The same draft and rendering as the send (``editions.draft``, ``editions.render_posts``), and
the same shared message a transport is handed (``batch.outgoing_mail``); the reader's own links
are filled in with the token-free ones a test copy gets, so the page shows nobody's token.
The preheader is read back from the rendered HTML, where an inbox finds it.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import datetime

from digest.delivery.batch import outgoing_mail
from digest.delivery.editions import draft, render_posts
from digest.mail.message import personalize
from digest.runtime import App
from digest.store.models import Cadence, Edition

_PREHEADER = re.compile(r'<div[^>]*class="preheader"[^>]*>(.*?)</div>', re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


@dataclass(frozen=True)
class MailView:
    """One digest's mail as its reader gets it: subject, inbox snippet, both parts."""

    subject: str
    preheader: str
    html: str
    text: str


@dataclass(frozen=True)
class NextDigest:
    """What the next digest of ``cadence`` holds now; ``mail`` is None when nothing is new."""

    cadence: Cadence
    period: str
    posts: tuple[str, ...]
    mail: MailView | None
    reason: str | None


def preheader_of(page: str) -> str:
    """The inbox snippet of a rendered digest (the hidden preheader block), as plain text."""
    found = _PREHEADER.search(page)
    if found is None:
        return ""
    return " ".join(html.unescape(_TAG.sub("", found.group(1))).split())


def mail_view(app: App, edition: Edition) -> MailView:
    """``edition``'s shared message with the token-free links anyone may see."""
    mail = outgoing_mail(app.settings, edition)
    page = personalize(mail.html, mail.fallbacks)
    return MailView(subject=mail.subject, preheader=preheader_of(page), html=page,
                    text=personalize(mail.text, mail.fallbacks))


def next_digest(app: App, cadence: Cadence, now: datetime | None = None) -> NextDigest:
    """The next digest of ``cadence`` as it would go out now (nothing is claimed)."""
    with app.sessions() as session:
        upcoming = draft(session, app.settings, cadence, now)
        titles = tuple(p.title for p in upcoming.posts)
        if not upcoming.posts:
            return NextDigest(cadence, upcoming.period.key, (), None, upcoming.reason)
        rendered = render_posts(session, app.settings, upcoming.posts)
    edition = Edition(id=0, cadence=cadence, subject=rendered.subject, html=rendered.html,
                      text=rendered.text, post_ids=[])  # never added
    return NextDigest(cadence, upcoming.period.key, titles, mail_view(app, edition), None)
