"""How one reader's delivery row moves: forward only, never back from a final outcome.

Kept below the services so both the send path (``delivery.record``) and the provider's
events (``readers.events``) and the welcome mail (``readers.optin``) move rows by one rule.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digest.store.models import Delivery, DeliveryStatus

D = DeliveryStatus
# Outcomes that end a row's story: nothing earlier replaces them.
FINAL = frozenset({D.DELIVERED, D.BOUNCED, D.DROPPED, D.COMPLAINED, D.UNSUBSCRIBED,
                   D.REFUSED, D.FAILED, D.ALREADY_RECEIVED})
# Readers who did not get the edition: a resend may try them again.
NOT_RECEIVED = frozenset({D.BOUNCED, D.DROPPED, D.REFUSED, D.FAILED})


def apply_event(session: Session, edition_id: int, subscriber_id: int, status: DeliveryStatus,
                at: datetime, message_id: str | None = None) -> bool:
    """Move one reader's row to ``status`` (creating it if the event came first).

    Returns False when the row already holds a final outcome or a later stage.
    """
    row = session.get(Delivery, (edition_id, subscriber_id))
    if row is None:
        try:
            with session.begin_nested():
                session.add(Delivery(edition_id=edition_id, subscriber_id=subscriber_id,
                                     status=int(status), at=at, updated_at=at,
                                     message_id=message_id))
            return True
        except IntegrityError:
            row = session.get(Delivery, (edition_id, subscriber_id))
            if row is None:
                raise
    current = D(row.status)
    if current in FINAL or (status not in FINAL and status <= current):
        if message_id and not row.message_id:
            row.message_id = message_id
        return False
    row.status = int(status)
    row.updated_at = at
    row.message_id = row.message_id or message_id
    return True
