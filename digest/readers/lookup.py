"""Finding a reader: by address (keyed or legacy hash) or by a signed link."""

from __future__ import annotations

import hmac

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.errors import InvalidTokenError
from digest.readers.addresses import email_hashes
from digest.runtime import App
from digest.store.models import (
    Subscriber,
)
from digest.tokens import Purpose


def by_address(session: Session, app: App, address: str) -> Subscriber | None:
    """The reader of ``address``, moving a row found by its old unsalted hash to the keyed one."""
    keyed, legacy = email_hashes(address, app.address_key)
    found = list(session.scalars(
        select(Subscriber).where(Subscriber.email_hash.in_((keyed, legacy)))))
    if not found:
        return None
    sub = next((s for s in found if s.email_hash == keyed), found[0])
    if sub.email_hash != keyed:
        sub.email_hash = keyed
    return sub


def by_token(session: Session, app: App, purpose: Purpose, token: str) -> Subscriber:
    """The reader a token names, if the token was made for this very reader.

    The link key is checked as well as the id: an erased reader has a new key and a deleted
    one has no row (ids are never reused), so an old link acts on nobody.
    """
    ref = app.tokens.read(purpose, token)
    sub = session.get(Subscriber, ref.subscriber_id)
    if sub is None or not hmac.compare_digest(sub.link_key or "", ref.link_key):
        raise InvalidTokenError("this link is no longer valid")
    return sub
