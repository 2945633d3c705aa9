"""Double opt-in: record a sign-up, mail the confirmation, confirm, welcome."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from digest.errors import DeliveryError, InvalidTokenError, SubscriberError
from digest.mail import links
from digest.mail.message import OutgoingMail, Recipient
from digest.readers import lifecycle
from digest.readers import mails as reader_mail
from digest.readers.addresses import email_hash, normalise
from digest.readers.lookup import by_address, by_token
from digest.runtime import App
from digest.slots import Slot, set_slot
from digest.store.deliveries import NOT_RECEIVED, apply_event
from digest.store.models import (
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    Subscriber,
    SubscriberStatus,
    utcnow,
)
from digest.store.sessions import transaction
from digest.tokens import Purpose

log = logging.getLogger(__name__)


RESEND_AFTER = timedelta(minutes=15)


def _record_signup(
    app: App, address: str, ip: str | None, source: str, now: datetime, slot: Slot | None
) -> tuple[int, str | None] | None:
    """Apply the sign-up rules; the reader (id, link key) if a confirmation mail is due.

    The form's zone and hour go to a reader who is not confirmed: one this sign-up creates
    (or recreates after an erasure), one still pending, one coming back after leaving; the
    last sign-up before the confirmation click holds. Anyone can send the form with someone
    else's address, so it never changes a confirmed reader's choices: they change them from
    their preferences link.
    """
    with transaction(app.sessions) as session:
        sub = by_address(session, app, address)
        if sub is None or sub.status is SubscriberStatus.DELETED:
            if sub is None:
                sub = Subscriber(email=address, email_hash=email_hash(address, app.address_key),
                                 created_at=now)
                session.add(sub)
        elif not lifecycle.can_sign_up(sub):
            return None
        elif sub.status is SubscriberStatus.PENDING:
            sent = sub.confirmation_sent_at
            if sent is not None and now - sent < RESEND_AFTER:
                if slot is not None:
                    set_slot(sub, slot, now)  # no second mail yet; the first link confirms
                return None
        if slot is not None and sub.status is not SubscriberStatus.ACTIVE:
            set_slot(sub, slot, now)
        lifecycle.sign_up(sub, address, now, ip, source)
        sub.confirmation_sent_at = now  # claimed before sending; cleared if sending fails
        session.flush()
        return sub.id, sub.link_key


def subscribe(app: App, email: str, *, ip: str | None, source: str,
              now: datetime | None = None, slot: Slot | None = None) -> None:
    """Sign an address up (double opt-in); the same outcome whether or not it is known.

    ``slot`` (checked by the caller) is the delivery time a new reader asked for.
    """
    now = now or utcnow()
    address = normalise(email, app.settings.blocked_domains)
    try:
        reader = _record_signup(app, address, ip, source, now, slot)
    except IntegrityError:  # the same address signed up concurrently: the rules apply again
        reader = _record_signup(app, address, ip, source, now, slot)
    if reader is None:
        return
    subscriber_id, link_key = reader
    url = links.confirm_url(app.settings, app.tokens, subscriber_id, link_key)
    mail = reader_mail.confirmation(app.settings, url)
    try:
        # The reader's own links and List-Unsubscribe headers, as on every mail we send:
        # "Never email me again" must work from the confirmation mail too.
        _send(app, mail, links.recipient_for(app.settings, app.tokens, subscriber_id, address,
                                             link_key=link_key))
    except DeliveryError:
        log.exception("confirmation mail to subscriber %s failed", subscriber_id)
        with transaction(app.sessions) as session:
            session.execute(update(Subscriber).where(Subscriber.id == subscriber_id)
                            .values(confirmation_sent_at=None))


def _send(app: App, mail: OutgoingMail, recipient: Recipient) -> None:
    transport = app.transport()
    try:
        transport.send_batch(mail, [recipient])
    finally:
        transport.close()


def confirm(app: App, token: str, now: datetime | None = None, *,
            welcome: Callable[[int], None] | None = None) -> bool:
    """Confirm a pending sign-up and send the welcome mail; False if it was already active.

    ``welcome`` hands the welcome mail elsewhere (the web app sends it after the answer);
    without one it is sent at once.
    """
    now = now or utcnow()
    with transaction(app.sessions) as session:
        sub = by_token(session, app, Purpose.CONFIRM, token)
        try:
            if not lifecycle.confirm(sub, now):
                return False
        except SubscriberError as exc:
            raise InvalidTokenError(str(exc)) from exc
        address = cast(str, sub.email)  # confirm() refuses an erased reader
        subscriber_id, name, link_key = sub.id, sub.name, sub.link_key
    if welcome is not None:
        welcome(subscriber_id)
    else:
        _send_welcome(app, subscriber_id, address, name, link_key)
    return True


def send_welcome(app: App, subscriber_id: int) -> bool:
    """Send the welcome mail to a reader who is (still) active; False if they are not."""
    with app.sessions() as session:
        sub = session.get(Subscriber, subscriber_id)
        if sub is None or sub.status is not SubscriberStatus.ACTIVE or sub.email is None:
            return False
        address, name, link_key = sub.email, sub.name, sub.link_key
    _send_welcome(app, subscriber_id, address, name, link_key)
    return True


def _latest_edition(app: App, subscriber_id: int) -> Edition | None:
    """The latest sent digest, unless this reader received it already (a returning reader
    keeps their id and their delivery record): it is not mailed to them twice."""
    with app.sessions() as session:
        latest = session.scalars(
            select(Edition).where(Edition.status == EditionStatus.SENT)
            .order_by(Edition.id.desc()).limit(1)
        ).first()
        if latest is None:
            return None
        row = session.get(Delivery, (latest.id, subscriber_id))
        if row is not None and DeliveryStatus(row.status) not in NOT_RECEIVED:
            return None
        return latest


def _send_welcome(app: App, subscriber_id: int, address: str, name: str | None,
                  link_key: str | None) -> None:
    latest = _latest_edition(app, subscriber_id) if app.settings.welcome_with_latest else None
    mail = reader_mail.welcome(app.settings, latest)
    recipient = links.recipient_for(app.settings, app.tokens, subscriber_id, address, name,
                                    link_key=link_key)
    try:
        _send(app, mail, recipient)
    except DeliveryError:  # the reader is subscribed either way; the welcome is a courtesy
        log.exception("welcome mail to subscriber %s failed", subscriber_id)
        return
    if latest is not None:  # the reader has these posts now: no digest brings them again
        with transaction(app.sessions) as session:
            apply_event(session, latest.id, subscriber_id, DeliveryStatus.HANDED, utcnow())


def confirm_status(app: App, token: str) -> SubscriberStatus:
    """What a confirmation link would do, without doing it (the GET of the confirm page).

    Raises InvalidTokenError for a forged or expired link, or one whose sign-up is gone.
    """
    with app.sessions() as session:
        sub = by_token(session, app, Purpose.CONFIRM, token)
        if sub.status not in (SubscriberStatus.PENDING, SubscriberStatus.ACTIVE) or (
            sub.email is None
        ):
            raise InvalidTokenError("this link is no longer valid; please sign up again")
        return sub.status
