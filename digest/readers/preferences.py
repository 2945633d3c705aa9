"""What a reader does from their own links: preferences, pause, unsubscribe, resubscribe,
download their data, delete it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from digest.config import Settings
from digest.errors import InvalidTokenError, SubscriberError
from digest.feeds.topics import load_resolver
from digest.readers import choices, lifecycle
from digest.readers.lookup import by_token
from digest.runtime import App
from digest.store.models import (
    Cadence,
    Subscriber,
    SubscriberStatus,
    utcnow,
)
from digest.store.sessions import transaction
from digest.tokens import Purpose


@dataclass(frozen=True)
class Preferences:
    """What the preferences page shows and edits."""

    email: str
    status: SubscriberStatus
    cadence: Cadence
    paused: bool
    timezone: str | None = None  # None: the operator's (DIGEST_TIMEZONE)
    hour: int | None = None  # None: the schedule's
    weekday: int | None = None  # None: the schedule's
    topic_ids: tuple[int, ...] | None = None  # None: everything
    when: str = ""  # when the digest comes, on the reader's clock
    # The boxes to tick: the topics they follow as they stand now (a topic merged into
    # another shows as that one), and whether they ever chose their time (if not, the page
    # may offer the browser's zone).
    ticked: frozenset[int] = frozenset()
    chose_time: bool = False


def unsubscribe(app: App, token: str, now: datetime | None = None) -> None:
    """Unsubscribe at once; repeating it, or using an old link, changes nothing more."""
    now = now or utcnow()
    with transaction(app.sessions) as session:
        sub = by_token(session, app, Purpose.UNSUBSCRIBE, token)
        lifecycle.unsubscribe(sub, now)


def check_unsubscribe_link(app: App, token: str) -> None:
    """Raise InvalidTokenError for a link that would act on nobody (the page's GET; no write)."""
    with app.sessions() as session:
        by_token(session, app, Purpose.UNSUBSCRIBE, token)


def _preferences(sub: Subscriber, settings: Settings | None = None) -> Preferences:
    if sub.email is None:
        raise InvalidTokenError("this reader's data has been deleted")
    stored = sub.topic_ids if isinstance(sub.topic_ids, list) else None  # JSON: anything
    topics = None if stored is None else tuple(
        i for i in stored if isinstance(i, int) and not isinstance(i, bool))
    return Preferences(email=sub.email, status=sub.status, cadence=sub.cadence,
                       paused=sub.paused, timezone=sub.timezone, hour=sub.delivery_hour,
                       weekday=sub.delivery_weekday, topic_ids=topics,
                       when=choices.describe_choice(settings, sub) if settings else "",
                       chose_time=sub.slot_changed_at is not None)


def get_preferences(app: App, token: str) -> Preferences:
    """The reader's current preferences."""
    with app.sessions() as session:
        sub = by_token(session, app, Purpose.PREFERENCES, token)
        prefs = _preferences(sub, app.settings)
        return replace(prefs, ticked=load_resolver(session).effective_set(prefs.topic_ids))


def topics_offered(app: App) -> list[tuple[int, str]]:
    """(id, name) of the topics a reader may choose, by name."""
    with app.sessions() as session:
        return [(topic.id, topic.name) for topic in choices.visible_topics(session)]


def update_preferences(app: App, token: str, cadence: Cadence | str, paused: bool) -> Preferences:
    """Change how often the reader gets mail, and whether it is paused (both given)."""
    return save_preferences(app, token, cadence, paused)[1]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def export_my_data(app: App, token: str) -> dict[str, Any]:
    """Everything kept about the reader, as a JSON-ready dict ("download my data")."""
    with app.sessions() as session:
        sub = by_token(session, app, Purpose.PREFERENCES, token)
        _preferences(sub)
        return {
            "email": sub.email,
            "name": sub.name,
            "status": sub.status.value,
            "cadence": sub.cadence.value,
            "paused": sub.paused,
            "timezone": sub.timezone,
            "delivery_hour": sub.delivery_hour,
            "delivery_weekday": sub.delivery_weekday,
            "topic_ids": sub.topic_ids,
            "created_at": _iso(sub.created_at),
            "confirmed_at": _iso(sub.confirmed_at),
            "unsubscribed_at": _iso(sub.unsubscribed_at),
            "confirmation_sent_at": _iso(sub.confirmation_sent_at),
            "consent": {
                "at": _iso(sub.consent_at),
                "ip": sub.consent_ip,
                "source": sub.consent_source,
            },
            "suppressed_reason": sub.suppressed_reason,
        }


def delete_me(app: App, token: str, now: datetime | None = None) -> None:
    """Erase the reader's personal data; only the address hash stays, to block re-imports."""
    with transaction(app.sessions) as session:
        sub = by_token(session, app, Purpose.PREFERENCES, token)
        if sub.status is not SubscriberStatus.DELETED:
            lifecycle.erase(sub, now or utcnow(), "deleted at the reader's request")


def save_preferences(app: App, token: str, cadence: Cadence | str | None = None,
                     paused: bool | None = None, chosen_slot: choices.Choices | None = None,
                     now: datetime | None = None) -> tuple[Preferences, Preferences]:
    """Change only what was given (None keeps the value); returns (before, after).

    A form that arrives without a field, or an empty POST, must never reset a reader's
    pause or frequency. ``chosen_slot`` (time zone, hour, weekday, topics) is checked whole
    before anything changes: one bad field (ChoiceError) changes nothing.
    """
    chosen = None
    if cadence is not None:
        try:
            chosen = Cadence(cadence)
        except ValueError as exc:
            names = ", ".join(c.value for c in Cadence)
            raise SubscriberError(
                f"unknown frequency {cadence!r}; choose one of {names}") from exc
    with transaction(app.sessions) as session:
        sub = by_token(session, app, Purpose.PREFERENCES, token)
        before = _preferences(sub, app.settings)  # a deleted reader has nothing to change
        if chosen_slot is not None:
            choices.apply_choices(session, app.settings, sub, chosen_slot, now or utcnow())
        if chosen is not None:
            sub.cadence = chosen
        if paused is not None:
            sub.paused = paused
        return before, _preferences(sub, app.settings)


def resubscribe(app: App, token: str, ip: str | None = None,
                now: datetime | None = None) -> Preferences:
    """Bring back a reader who unsubscribed, from their own preferences link.

    The preferences link reached the reader's mailbox, which is what a confirmation mail
    proves, so they become active at once with fresh consent. Bounced and complained
    readers are not brought back this way (a bounce needs a new sign-up to re-check the
    address; a complaint needs the operator).
    """
    now = now or utcnow()
    with transaction(app.sessions) as session:
        sub = by_token(session, app, Purpose.PREFERENCES, token)
        _preferences(sub)
        lifecycle.resubscribe(sub, now, ip)
        return _preferences(sub)
