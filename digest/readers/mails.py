"""The two transactional mails a reader gets from signing up: the confirmation and the welcome.

Rendering lives in ``digest.mail.notices`` and the sender and shared headers in
``digest.mail.compose``; this module only picks what goes in: the reader's confirmation link, and
the latest sent digest for the welcome mail (when DIGEST_WELCOME_WITH_LATEST is on). The
welcome mail keeps the reader placeholders, filled per reader by ``links.recipient_for``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from digest.config import Settings
from digest.feeds.sanitize import safe_url
from digest.mail.compose import outgoing_mail
from digest.mail.message import OutgoingMail
from digest.mail.notices import render_confirmation, render_welcome
from digest.mail.render import RenderedEdition
from digest.runtime import App
from digest.schedule import next_fire
from digest.store.models import Edition, Feed

__all__ = ["blog_url", "confirmation", "first_digest", "how_often", "welcome"]

_DAYS = {"0": "Sunday", "1": "Monday", "2": "Tuesday", "3": "Wednesday", "4": "Thursday",
         "5": "Friday", "6": "Saturday", "7": "Sunday", "sun": "Sunday", "mon": "Monday",
         "tue": "Tuesday", "wed": "Wednesday", "thu": "Thursday", "fri": "Friday",
         "sat": "Saturday"}


def blog_url(app: App) -> str | None:
    """Where readers go back to: DIGEST_BLOG_URL, else the feed's site link, else its origin."""
    if app.settings.blog_url:
        return app.settings.blog_url
    with app.sessions() as session:
        site = session.scalars(select(Feed.site_url).where(Feed.site_url.is_not(None))
                               .order_by(Feed.id).limit(1)).first()
    return safe_url(site) if site else app.settings.feed_origin


def how_often(settings: Settings) -> str:
    """The weekly digest's rhythm in words, from DIGEST_SCHEDULE ("once a week, on Mondays")."""
    fields = settings.schedule.split()
    day = _DAYS.get(fields[4].lower()) if len(fields) == 5 else None
    return f"once a week, on {day}s" if day else "once a week"


def first_digest(settings: Settings, now: datetime | None = None) -> str:
    """When a new reader's first weekly digest is due, e.g. "Monday 30 November, around 08:00"."""
    fire = next_fire(settings.schedule, settings.tz, now)
    return f"{fire:%A} {fire.day} {fire:%B}, around {fire:%H:%M} ({settings.timezone} time)"


def confirmation(settings: Settings, confirm_url: str) -> OutgoingMail:
    """The double opt-in mail: one button to the confirmation page."""
    return outgoing_mail(settings, render_confirmation(settings, confirm_url),
                         category="confirmation")


def welcome(settings: Settings, latest: Edition | None) -> OutgoingMail:
    """The mail after confirming, with the latest sent digest's posts when there is one."""
    previous = None
    if latest is not None:
        previous = RenderedEdition(subject=latest.subject, html=latest.html, text=latest.text,
                                   post_count=len(latest.post_ids or []))
    rendered = render_welcome(settings, previous, first_digest=first_digest(settings))
    return outgoing_mail(settings, rendered, category="welcome")
