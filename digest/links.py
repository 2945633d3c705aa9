"""Public URLs the service puts in emails and pages, and each reader's own links."""

from __future__ import annotations

from urllib.parse import quote

from digest.config import Settings
from digest.message import Recipient
from digest.render import PLACEHOLDERS
from digest.tokens import Purpose, Tokens


def confirm_url(settings: Settings, tokens: Tokens, subscriber_id: int) -> str:
    return f"{settings.base_url}/confirm/{tokens.make(Purpose.CONFIRM, subscriber_id)}"


def unsubscribe_url(settings: Settings, tokens: Tokens, subscriber_id: int) -> str:
    return f"{settings.base_url}/unsubscribe/{tokens.make(Purpose.UNSUBSCRIBE, subscriber_id)}"


def preferences_url(settings: Settings, tokens: Tokens, subscriber_id: int) -> str:
    return f"{settings.base_url}/preferences/{tokens.make(Purpose.PREFERENCES, subscriber_id)}"


def archive_url(settings: Settings, edition_id: int | None = None) -> str:
    if edition_id is None:
        return f"{settings.base_url}/archive"
    return f"{settings.base_url}/archive/{edition_id}"


def list_unsubscribe_headers(settings: Settings, one_click_url: str) -> dict[str, str]:
    """RFC 2369 / RFC 8058 headers for one reader (Gmail and Yahoo bulk-sender rules)."""
    targets = [f"<{one_click_url}>"]
    if settings.unsubscribe_mailto:
        targets.append(f"<mailto:{settings.unsubscribe_mailto}?subject=unsubscribe>")
    return {
        "List-Unsubscribe": ", ".join(targets),
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def recipient_for(
    settings: Settings, tokens: Tokens, subscriber_id: int, email: str, name: str | None = None
) -> Recipient:
    """A reader with their own unsubscribe/preferences links and headers."""
    unsub = unsubscribe_url(settings, tokens, subscriber_id)
    prefs = preferences_url(settings, tokens, subscriber_id)
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


def list_id(settings: Settings) -> str:
    """List-Id header value: the blog's name and the sending domain."""
    label = quote(settings.blog_name, safe=" ").replace('"', "")
    return f"{label} <digest.{settings.sending_domain}>"
