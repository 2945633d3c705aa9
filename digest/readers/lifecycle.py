"""The one place a reader's status changes: every transition, from where, and what it records.

    (new) --sign_up--> pending --confirm--> active --unsubscribe/remove--> unsubscribed
    unsubscribed, bounced, deleted --sign_up--> pending      unsubscribed --resubscribe--> active
    (new), pending, active --operator_add / import--> active
    active, pending --provider event--> bounced | complained | unsubscribed
    pending, never confirmed, too old --expire--> (row deleted); confirmed before --> unsubscribed
    anything --erase--> deleted (only the keyed address hash stays)

A complained reader gets nothing until the operator hears from them: no sign-up, add or
resubscribe brings them back. Services find and load readers; this module decides, and counts
the transitions the operator watches (``digest.metrics``: sign-ups, confirmations,
unsubscribes, bounces, complaints), each once its transaction commits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, Result, delete, update
from sqlalchemy.orm import Session, object_session

from digest.errors import SubscriberError
from digest.metrics import BOUNCES, COMPLAINTS, CONFIRMATIONS, SIGNUPS, UNSUBSCRIBES, on_commit
from digest.readers.choices import forget_choices
from digest.store.models import Subscriber, SubscriberStatus, new_link_key

__all__ = ["IMPORTED", "RECEIVING", "can_sign_up", "confirm", "erase", "expire_stale",
           "operator_add", "operator_remove", "resubscribe", "sign_up", "suppress",
           "unsubscribe"]

S = SubscriberStatus
RECEIVING = (S.ACTIVE, S.PENDING)  # statuses a reader leaves by unsubscribing or bouncing
IMPORTED = S.ACTIVE  # an imported reader consented elsewhere (the file keeps the record)
# Statuses from which a sign-up starts a new double opt-in. COMPLAINED is left out on
# purpose: someone who reported us as spam gets nothing until they write to the operator.
_RESTARTABLE = (S.UNSUBSCRIBED, S.BOUNCED, S.DELETED)


def can_sign_up(sub: Subscriber | None) -> bool:
    """Whether a sign-up may (re)start the double opt-in (a new row has no status yet)."""
    return sub is None or sub.status is None or sub.status in (S.PENDING, *_RESTARTABLE)


def sign_up(sub: Subscriber, address: str, now: datetime, ip: str | None,
            source: str) -> None:
    """pending, with a fresh consent record; a returning reader's suppression is cleared."""
    if not can_sign_up(sub):
        raise SubscriberError(f"a {sub.status.value} reader cannot sign up again")
    if sub.status in _RESTARTABLE:
        sub.email = address
        sub.unsubscribed_at = None
        sub.suppressed_reason = None
    sub.status = S.PENDING
    sub.consent_at = now
    sub.consent_ip = ip
    sub.consent_source = source[:100]
    on_commit(object_session(sub), SIGNUPS)


def confirm(sub: Subscriber, now: datetime) -> bool:
    """pending -> active; False when already active (a second press changes nothing)."""
    if sub.status is S.ACTIVE:
        return False
    if sub.status is not S.PENDING or sub.email is None:
        raise SubscriberError("this link is no longer valid; please sign up again")
    sub.status = S.ACTIVE
    sub.confirmed_at = now
    on_commit(object_session(sub), CONFIRMATIONS)
    return True


def operator_add(sub: Subscriber, now: datetime) -> None:
    """The operator adds a reader: active at once. Only the reader can undo their own exit."""
    if sub.status is not None and sub.status not in RECEIVING:  # None: a new row
        raise SubscriberError(
            f"{sub.email} is {sub.status.value}; only the reader can sign up again "
            "(through the signup page)"
        )
    sub.status = S.ACTIVE
    sub.confirmed_at = sub.confirmed_at or now


def unsubscribe(sub: Subscriber, now: datetime, reason: str | None = None, *,
                by: str = "reader") -> bool:
    """active or pending -> unsubscribed; False (and nothing changes) from anything else."""
    if sub.status not in RECEIVING:
        return False
    sub.status = S.UNSUBSCRIBED
    sub.unsubscribed_at = now
    if reason is not None:
        sub.suppressed_reason = reason
    on_commit(object_session(sub), UNSUBSCRIBES.labels(by))
    return True


def operator_remove(sub: Subscriber, now: datetime) -> bool:
    """The operator unsubscribes a reader."""
    return unsubscribe(sub, now, "removed by the operator", by="operator")


def resubscribe(sub: Subscriber, now: datetime, ip: str | None) -> None:
    """unsubscribed -> active from the reader's own preferences link (it reached their inbox,
    which is what a confirmation proves). Bounced and complained readers need a sign-up or
    the operator."""
    if sub.status is S.ACTIVE:
        return
    if sub.status is not S.UNSUBSCRIBED:
        raise SubscriberError("this address cannot be resubscribed from here; "
                              "please sign up again on the blog")
    sub.status = S.ACTIVE
    sub.unsubscribed_at = None
    sub.suppressed_reason = None
    sub.confirmed_at = now
    sub.consent_at = now
    sub.consent_ip = ip
    sub.consent_source = "preferences"


def erase(sub: Subscriber, now: datetime, reason: str) -> None:
    """-> deleted: personal data gone, every link mailed so far stops working."""
    sub.email = None
    sub.name = None
    sub.consent_ip = None
    sub.status = S.DELETED
    sub.unsubscribed_at = sub.unsubscribed_at or now
    sub.suppressed_reason = reason
    sub.link_key = new_link_key()
    forget_choices(sub, now)


def suppress(session: Session, match: ColumnElement[bool], status: SubscriberStatus,
             now: datetime, reason: str) -> int:
    """Receiving readers matching ``match`` -> bounced, complained or unsubscribed (bulk)."""
    if status not in (S.BOUNCED, S.COMPLAINED, S.UNSUBSCRIBED):
        raise ValueError(f"{status} is not a suppression")
    result = session.execute(
        update(Subscriber)
        .where(match, Subscriber.status.in_(RECEIVING))
        .values(status=status, unsubscribed_at=now, suppressed_reason=reason)
        .execution_options(synchronize_session=False)
    )
    changed = _count(result)
    on_commit(session, _SUPPRESSED[status], changed)
    return changed


_SUPPRESSED = {S.BOUNCED: BOUNCES, S.COMPLAINED: COMPLAINTS,
               S.UNSUBSCRIBED: UNSUBSCRIBES.labels("provider")}


def expire_stale(session: Session, cutoff: datetime, now: datetime) -> int:
    """Pending sign-ups older than ``cutoff``: never-confirmed rows are deleted (nothing was
    consented to); a returning reader who did not confirm again goes back to unsubscribed,
    keeping the record that blocks re-imports."""
    stale = (Subscriber.status == S.PENDING) & (Subscriber.consent_at < cutoff)
    dropped = session.execute(delete(Subscriber).where(stale, Subscriber.confirmed_at.is_(None)))
    reverted = session.execute(
        update(Subscriber).where(stale, Subscriber.confirmed_at.is_not(None))
        .values(status=S.UNSUBSCRIBED, unsubscribed_at=now)
    )
    return _count(dropped) + _count(reverted)


def _count(result: Result[Any]) -> int:
    return int(cast(CursorResult[Any], result).rowcount or 0)
