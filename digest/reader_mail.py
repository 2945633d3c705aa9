"""The two transactional mails a reader gets from signing up: the confirmation and the welcome.

Rendering lives in ``digest.render_mail`` and the sender and shared headers in
``digest.compose``; this module only picks what goes in: the reader's confirmation link, and
the latest sent digest for the welcome mail (when DIGEST_WELCOME_WITH_LATEST is on). The
welcome mail keeps the reader placeholders, filled per reader by ``links.recipient_for``.
"""

from __future__ import annotations

from digest.compose import outgoing_mail
from digest.config import Settings
from digest.message import OutgoingMail
from digest.models import Edition
from digest.render import RenderedEdition
from digest.render_mail import render_confirmation, render_welcome

__all__ = ["confirmation", "welcome"]


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
    return outgoing_mail(settings, render_welcome(settings, previous), category="welcome")
