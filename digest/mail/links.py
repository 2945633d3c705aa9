"""Public URLs the service puts in emails and pages, and each reader's own links.

A reader's links carry signed tokens (``recipient_for``); anything shown to more than one
person (the archive, a test copy) gets the token-free ``generic_substitutions`` instead.
"""

from __future__ import annotations

from digest.config import Settings
from digest.mail.message import Recipient, clean_header
from digest.mail.render import ARCHIVE_PLACEHOLDER, PLACEHOLDERS
from digest.tokens import Purpose, Tokens


def confirm_url(settings: Settings, tokens: Tokens, subscriber_id: int,
                link_key: str | None) -> str:
    """The reader's confirmation page (expires after DIGEST_CONFIRM_MAX_AGE_HOURS)."""
    token = tokens.make(Purpose.CONFIRM, subscriber_id, link_key)
    return f"{settings.base_url}/confirm/{token}"


def unsubscribe_url(settings: Settings, tokens: Tokens, subscriber_id: int,
                    link_key: str | None) -> str:
    """The reader's own one-click unsubscribe URL (RFC 8058 target)."""
    token = tokens.make(Purpose.UNSUBSCRIBE, subscriber_id, link_key)
    return f"{settings.base_url}/unsubscribe/{token}"


def preferences_url(settings: Settings, tokens: Tokens, subscriber_id: int,
                    link_key: str | None) -> str:
    """The reader's own preferences page."""
    token = tokens.make(Purpose.PREFERENCES, subscriber_id, link_key)
    return f"{settings.base_url}/preferences/{token}"


def signup_url(settings: Settings) -> str:
    """The public signup page; the token-free stand-in for a reader's own links."""
    return f"{settings.base_url}/"


def archive_url(settings: Settings, edition_id: int | None = None) -> str:
    """The archive index, or one edition's view-in-browser page."""
    if edition_id is None:
        return f"{settings.base_url}/archive"
    return f"{settings.base_url}/archive/{edition_id}"


def list_unsubscribe_headers(settings: Settings, one_click_url: str) -> dict[str, str]:
    """RFC 2369 / RFC 8058 headers for one reader (Gmail and Yahoo bulk-sender rules)."""
    targets = [f"<{one_click_url}>"]
    if settings.unsubscribe_mailto:
        address = clean_header(settings.unsubscribe_mailto).removeprefix("mailto:")
        targets.append(f"<mailto:{address}?subject=unsubscribe>")
    return {
        "List-Unsubscribe": ", ".join(targets),
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def recipient_for(
    settings: Settings, tokens: Tokens, subscriber_id: int, email: str, name: str | None = None,
    *, link_key: str | None,
) -> Recipient:
    """A reader with their own unsubscribe/preferences links and headers.

    ``link_key`` is the reader's ``Subscriber.link_key``: the links die when it changes.
    """
    unsub = unsubscribe_url(settings, tokens, subscriber_id, link_key)
    prefs = preferences_url(settings, tokens, subscriber_id, link_key)
    return Recipient(
        email=email,
        name=name,
        subscriber_id=subscriber_id,
        substitutions={
            PLACEHOLDERS["unsubscribe_url"]: unsub,
            PLACEHOLDERS["preferences_url"]: prefs,
        },
        headers=list_unsubscribe_headers(settings, unsub),
    )


def generic_substitutions(settings: Settings, edition_id: int | None = None) -> dict[str, str]:
    """Placeholder values that identify nobody: for the archive and for test copies."""
    return {
        PLACEHOLDERS["unsubscribe_url"]: signup_url(settings),
        PLACEHOLDERS["preferences_url"]: signup_url(settings),
        ARCHIVE_PLACEHOLDER: archive_url(settings, edition_id),
    }


def list_id(settings: Settings) -> str:
    """List-Id header value (RFC 2919): the blog's name and the sending domain."""
    label = clean_header(settings.blog_name).translate({ord(c): None for c in '<>"'})
    return f"{label} <digest.{settings.sending_domain}>".strip()
