"""The two transactional mails a reader gets from signing up: the confirmation and the welcome.

Both come back as an ``OutgoingMail`` ready for a transport. The welcome mail keeps the reader
placeholders (``digest.render.PLACEHOLDERS``), filled per reader by ``links.recipient_for``,
and carries the List-Unsubscribe headers like any digest.

TODO(render): switch the two ``_fallback_*`` renderers to ``digest.render_confirmation`` and
``digest.render_welcome`` (templated) once they land; the public functions here stay.
"""

from __future__ import annotations

from html import escape

from digest import links
from digest.config import Settings
from digest.message import OutgoingMail
from digest.models import Edition
from digest.render import PLACEHOLDERS

__all__ = ["confirmation", "welcome"]

ARCHIVE_PLACEHOLDER = "[%archive_url%]"


def _mail(settings: Settings, subject: str, html: str, text: str,
          headers: dict[str, str] | None = None) -> OutgoingMail:
    return OutgoingMail(
        subject=subject,
        html=html,
        text=text,
        from_email=settings.from_email,
        from_name=settings.from_name,
        reply_to=settings.reply_to,
        headers=headers or {},
        categories=("transactional",),
    )


def _page(title: str, body_html: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{escape(title)}</title></head>"
        "<body style=\"font-family: Georgia, serif; color: #222; max-width: 600px; "
        f"margin: 0 auto; padding: 24px;\">{body_html}</body></html>\n"
    )


def _fallback_confirmation(settings: Settings, confirm_url: str) -> tuple[str, str, str]:
    blog = settings.blog_name
    hours = settings.confirm_max_age_hours
    subject = f"Please confirm your subscription to {blog}"
    text = (
        f"Someone, hopefully you, asked to receive {blog} by email.\n\n"
        f"To confirm, open this link and press the button:\n{confirm_url}\n\n"
        f"The link works for {hours} hours. If you did not ask for this, ignore this "
        "message and nothing will be sent to you.\n\n"
        f"{settings.postal_address}\n"
    )
    html = _page(subject, (
        f"<h1>{escape(blog)}</h1>"
        f"<p>Someone, hopefully you, asked to receive {escape(blog)} by email.</p>"
        f"<p><a href=\"{escape(confirm_url)}\" style=\"display:inline-block;padding:12px 20px;"
        "background:#1a4d8f;color:#fff;text-decoration:none;border-radius:4px\">"
        "Confirm my subscription</a></p>"
        f"<p>The link works for {hours} hours. If you did not ask for this, ignore this "
        "message and nothing will be sent to you.</p>"
        f"<p style=\"font-size:12px;color:#666\">{escape(settings.postal_address)}</p>"
    ))
    return subject, html, text


def _fallback_welcome(settings: Settings, latest: Edition | None) -> tuple[str, str, str]:
    blog = settings.blog_name
    subject = f"Welcome to {blog}"
    unsub, prefs = PLACEHOLDERS["unsubscribe_url"], PLACEHOLDERS["preferences_url"]
    intro = f"You are subscribed to {blog}. "
    if latest is None:
        intro += "The next digest will reach you when new posts appear."
        text = (f"{intro}\n\nChange how often you get it: {prefs}\n"
                f"Unsubscribe: {unsub}\n\n{settings.postal_address}\n")
        html = _page(subject, (
            f"<h1>{escape(blog)}</h1><p>{escape(intro)}</p>"
            f"<p style=\"font-size:12px;color:#666\"><a href=\"{prefs}\">Preferences</a> "
            f"&middot; <a href=\"{unsub}\">Unsubscribe</a><br>"
            f"{escape(settings.postal_address)}</p>"
        ))
        return subject, html, text
    intro += "Here is the latest digest; the next one follows when new posts appear."
    archive = links.archive_url(settings, latest.id)
    body_html = latest.html.replace(ARCHIVE_PLACEHOLDER, archive)
    banner = f"<p style=\"padding:16px 24px;margin:0\">{escape(intro)}</p>"
    head, sep, rest = body_html.partition("<body")
    if sep:
        tag_end = rest.find(">") + 1
        html = head + sep + rest[:tag_end] + banner + rest[tag_end:]
    else:
        html = _page(subject, banner + body_html)
    text = intro + "\n\n" + latest.text.replace(ARCHIVE_PLACEHOLDER, archive)
    return subject, html, text


def confirmation(settings: Settings, confirm_url: str) -> OutgoingMail:
    """The double opt-in mail: one link to the confirmation page (no list headers)."""
    subject, html, text = _fallback_confirmation(settings, confirm_url)
    return _mail(settings, subject, html, text)


def welcome(settings: Settings, latest: Edition | None) -> OutgoingMail:
    """The mail after confirming, with the latest sent digest when there is one."""
    subject, html, text = _fallback_welcome(settings, latest)
    return _mail(settings, subject, html, text, {"List-Id": links.list_id(settings)})
