"""The operator's list: add a reader (active at once), list, remove, erase, and expire sign-ups
that were never confirmed. Status changes go through ``lifecycle``.

``remove`` and ``erase`` name a reader by address (the CLI) or by id (the console, which
also reaches readers whose address is already gone).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.readers import lifecycle
from digest.readers.addresses import email_hash, normalise
from digest.readers.lookup import by_address
from digest.runtime import App
from digest.store.models import (
    MAX_ID,
    Subscriber,
    SubscriberStatus,
    utcnow,
)
from digest.store.sessions import transaction

_LIST_PAGE = 500


def add(app: App, email: str, name: str | None = None, now: datetime | None = None) -> Subscriber:
    """Add a reader for the operator: active at once (no confirmation mail)."""
    now = now or utcnow()
    address = normalise(email, app.settings.blocked_domains)
    with transaction(app.sessions) as session:
        sub = by_address(session, app, address)
        if sub is None:
            sub = Subscriber(email=address, email_hash=email_hash(address, app.address_key),
                             created_at=now, consent_at=now, consent_source="operator")
            session.add(sub)
        lifecycle.operator_add(sub, now)
        if name:
            sub.name = name.strip()[:200]
        session.flush()
        return sub


def list_subscribers(app: App, status: SubscriberStatus | str | None = None
                     ) -> Iterator[Subscriber]:
    """Every reader (or those with ``status``), by id, streamed in pages."""
    wanted = SubscriberStatus(status) if status is not None else None
    after = 0
    while True:
        query = select(Subscriber).where(Subscriber.id > after)
        if wanted is not None:
            query = query.where(Subscriber.status == wanted)
        with app.sessions() as session:
            page = list(session.scalars(query.order_by(Subscriber.id).limit(_LIST_PAGE)))
        yield from page
        if len(page) < _LIST_PAGE:
            return
        after = page[-1].id


@dataclass(frozen=True)
class Removal:
    """What ``remove`` did: ``removed`` now, or not, and the reader's status after it
    (None: the address is not on the list), so the operator is told which."""

    removed: bool
    status: SubscriberStatus | None


def _find(session: Session, app: App, who: str | int) -> Subscriber | None:
    if isinstance(who, int):
        return session.get(Subscriber, who) if 0 < who <= MAX_ID else None
    return by_address(session, app, who)


def remove(app: App, who: str | int, now: datetime | None = None) -> Removal:
    """Unsubscribe a reader (an address or an id) for the operator; a reader who had already
    left, bounced or complained is left as they are, and the result says so."""
    now = now or utcnow()
    with transaction(app.sessions) as session:
        sub = _find(session, app, who)
        if sub is None:
            return Removal(False, None)
        removed = lifecycle.operator_remove(sub, now)
        return Removal(removed, sub.status)


ERASED_BY_OPERATOR = "erased by the operator"


def erase(app: App, who: str | int, now: datetime | None = None) -> Removal:
    """Erase a reader (GDPR): address, name and IP gone, their links dead; only the keyed
    address hash stays, so no import brings them back. ``removed`` is False when there was
    nobody, or nothing left, to erase."""
    now = now or utcnow()
    with transaction(app.sessions) as session:
        sub = _find(session, app, who)
        if sub is None:
            return Removal(False, None)
        if sub.status is SubscriberStatus.DELETED:
            return Removal(False, sub.status)
        lifecycle.erase(sub, now, ERASED_BY_OPERATOR)
        return Removal(True, sub.status)


def expire_pending(app: App, now: datetime | None = None) -> int:
    """Drop sign-ups not confirmed within DIGEST_CONFIRM_MAX_AGE_HOURS; returns how many.

    Never-confirmed rows are deleted (nothing was consented to); a returning reader who did
    not confirm again goes back to *unsubscribed*, keeping the record that blocks re-imports.
    """
    now = now or utcnow()
    cutoff = now - timedelta(hours=app.settings.confirm_max_age_hours)
    with transaction(app.sessions) as session:
        return lifecycle.expire_stale(session, cutoff, now)
