"""Readers' lifecycle: sign up, confirm, unsubscribe, preferences, their data, the operator's list.

Every rule about a subscriber's status lives here, so the web form, the CLI and the importer
behave alike:

- ``subscribe`` gives the caller no hint whether the address was known: it returns nothing
  for new, pending, active and unsubscribed addresses alike. New or returning addresses become
  *pending* and get a confirmation mail (re-sending is throttled by ``RESEND_AFTER``).
- ``confirm`` makes a pending reader active and sends the welcome mail; a GET never reaches it.
- ``unsubscribe`` is immediate and idempotent; coming back needs a new confirmation.
- ``delete_me`` erases the personal data and keeps only ``email_hash``, so that an old import
  cannot add the address again.

Identity is ``email_hash``: an HMAC of the address in lower case, keyed from
DIGEST_SECRET_KEY, so an erased reader's hash cannot be confirmed by guessing addresses. The
stored address keeps the local part as typed (with the domain lower-cased), but two spellings
differing only in case are one reader. Rows hashed before the key existed hold a bare sha256
(``legacy_email_hash``); lookups match it too, and a row moves to the keyed hash when its
address is seen again (an erased row cannot be rehashed without its address).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import CursorResult, Result, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digest import links, reader_mail
from digest.db import transaction
from digest.errors import DeliveryError, InvalidEmailError, InvalidTokenError, SubscriberError
from digest.message import OutgoingMail, Recipient
from digest.models import (
    Cadence,
    Edition,
    EditionStatus,
    Subscriber,
    SubscriberStatus,
    new_link_key,
    utcnow,
)
from digest.tokens import Purpose
from digest.wiring import App

__all__ = [
    "RESEND_AFTER",
    "Preferences",
    "add",
    "confirm",
    "confirm_status",
    "delete_me",
    "email_hash",
    "email_hashes",
    "expire_pending",
    "export_my_data",
    "get_preferences",
    "legacy_email_hash",
    "list_subscribers",
    "normalise",
    "remove",
    "resubscribe",
    "save_preferences",
    "send_welcome",
    "subscribe",
    "unsubscribe",
    "update_preferences",
]

log = logging.getLogger(__name__)

RESEND_AFTER = timedelta(minutes=15)
MAX_EMAIL_LENGTH = 320
_LIST_PAGE = 500

# Statuses from which a sign-up starts a new double opt-in. COMPLAINED is left out on
# purpose: someone who reported us as spam gets nothing until they write to the operator.
_RESTARTABLE = {SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED, SubscriberStatus.DELETED}


@dataclass(frozen=True)
class Preferences:
    """What the preferences page shows and edits."""

    email: str
    status: SubscriberStatus
    cadence: Cadence
    paused: bool


_KEYED = "h1:"  # marks the keyed form; a bare sha256 is 64 hex digits


def email_hash(email: str, key: bytes) -> str:
    """The identity of an address: HMAC-SHA256 (``App.address_key``) of it, lower-cased."""
    mac = hmac.digest(key, email.strip().lower().encode("utf-8"), "sha256")
    return _KEYED + base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def legacy_email_hash(email: str) -> str:
    """The unsalted sha256 stored before keyed hashes: only to find those old rows."""
    return hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()


def email_hashes(email: str, key: bytes) -> tuple[str, str]:
    """Both forms an address may be stored under: (keyed, legacy)."""
    return email_hash(email, key), legacy_email_hash(email)


def _is_blocked(domain: str, blocked: Iterable[str]) -> bool:
    for entry in blocked:
        entry = entry.strip().lower().lstrip("@").lstrip(".")
        if entry and (domain == entry or domain.endswith("." + entry)):
            return True
    return False


def normalise(email: str, blocked_domains: Iterable[str] = ()) -> str:
    """A valid address with its domain lower-cased; raises InvalidEmailError saying why.

    The domain is kept in its IDNA (ASCII) form (``user@xn--bcher-kva.de`` for
    ``user@bücher.de``): both spellings are one reader, a punycode domain stays as typed,
    and only a non-ASCII local part ever needs SMTPUTF8.
    """
    if "\r" in email or "\n" in email:
        raise InvalidEmailError("an email address cannot contain line breaks")
    candidate = email.strip()
    if not candidate:
        raise InvalidEmailError("please enter an email address")
    if len(candidate) > MAX_EMAIL_LENGTH:
        raise InvalidEmailError(f"an email address has at most {MAX_EMAIL_LENGTH} characters")
    try:
        info = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmailError(f"not a valid email address: {exc}") from exc
    domain = info.domain.lower()
    if _is_blocked(domain, blocked_domains) or _is_blocked(info.ascii_domain.lower(),
                                                           blocked_domains):
        raise InvalidEmailError(f"addresses at {domain} cannot subscribe")
    address = f"{info.local_part}@{info.ascii_domain.lower()}"
    if len(address) > MAX_EMAIL_LENGTH:
        raise InvalidEmailError(f"an email address has at most {MAX_EMAIL_LENGTH} characters")
    return address


def _by_address(session: Session, app: App, address: str) -> Subscriber | None:
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


def _record_signup(
    app: App, address: str, ip: str | None, source: str, now: datetime
) -> tuple[int, str | None] | None:
    """Apply the sign-up rules; the reader (id, link key) if a confirmation mail is due."""
    with transaction(app.sessions) as session:
        sub = _by_address(session, app, address)
        if sub is None:
            sub = Subscriber(email=address, email_hash=email_hash(address, app.address_key),
                             created_at=now)
            session.add(sub)
        elif sub.status in (SubscriberStatus.ACTIVE, SubscriberStatus.COMPLAINED):
            return None
        elif sub.status is SubscriberStatus.PENDING:
            sent = sub.confirmation_sent_at
            if sent is not None and now - sent < RESEND_AFTER:
                return None
        elif sub.status in _RESTARTABLE:
            sub.email = address
            sub.unsubscribed_at = None
            sub.suppressed_reason = None
        sub.status = SubscriberStatus.PENDING
        sub.consent_at = now
        sub.consent_ip = ip
        sub.consent_source = source[:100]
        sub.confirmation_sent_at = now  # claimed before sending; cleared if sending fails
        session.flush()
        return sub.id, sub.link_key


def subscribe(app: App, email: str, *, ip: str | None, source: str,
              now: datetime | None = None) -> None:
    """Sign an address up (double opt-in); the same outcome whether or not it is known."""
    now = now or utcnow()
    address = normalise(email, app.settings.blocked_domains)
    try:
        reader = _record_signup(app, address, ip, source, now)
    except IntegrityError:  # the same address signed up concurrently: the rules apply again
        reader = _record_signup(app, address, ip, source, now)
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


def _subscriber_from(session: Session, app: App, purpose: Purpose, token: str) -> Subscriber:
    """The reader a token names, if the token was made for this very reader.

    The link key is checked as well as the id: an erased reader has a new key and a deleted
    one has no row (ids are never reused), so an old link acts on nobody.
    """
    ref = app.tokens.read(purpose, token)
    sub = session.get(Subscriber, ref.subscriber_id)
    if sub is None or not hmac.compare_digest(sub.link_key or "", ref.link_key):
        raise InvalidTokenError("this link is no longer valid")
    return sub


def confirm(app: App, token: str, now: datetime | None = None, *,
            welcome: Callable[[int], None] | None = None) -> bool:
    """Confirm a pending sign-up and send the welcome mail; False if it was already active.

    ``welcome`` hands the welcome mail elsewhere (the web app sends it after the answer);
    without one it is sent at once.
    """
    now = now or utcnow()
    with transaction(app.sessions) as session:
        sub = _subscriber_from(session, app, Purpose.CONFIRM, token)
        if sub.status is SubscriberStatus.ACTIVE:
            return False
        if sub.status is not SubscriberStatus.PENDING or sub.email is None:
            raise InvalidTokenError("this link is no longer valid; please sign up again")
        sub.status = SubscriberStatus.ACTIVE
        sub.confirmed_at = now
        subscriber_id, address, name, link_key = sub.id, sub.email, sub.name, sub.link_key
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


def _latest_edition(app: App) -> Edition | None:
    with app.sessions() as session:
        return session.scalars(
            select(Edition).where(Edition.status == EditionStatus.SENT)
            .order_by(Edition.id.desc()).limit(1)
        ).first()


def _send_welcome(app: App, subscriber_id: int, address: str, name: str | None,
                  link_key: str | None) -> None:
    latest = _latest_edition(app) if app.settings.welcome_with_latest else None
    mail = reader_mail.welcome(app.settings, latest)
    recipient = links.recipient_for(app.settings, app.tokens, subscriber_id, address, name,
                                    link_key=link_key)
    try:
        _send(app, mail, recipient)
    except DeliveryError:  # the reader is subscribed either way; the welcome is a courtesy
        log.exception("welcome mail to subscriber %s failed", subscriber_id)


# --- leaving and preferences ------------------------------------------------------------


def unsubscribe(app: App, token: str, now: datetime | None = None) -> None:
    """Unsubscribe at once; repeating it, or using an old link, changes nothing more."""
    now = now or utcnow()
    with transaction(app.sessions) as session:
        sub = _subscriber_from(session, app, Purpose.UNSUBSCRIBE, token)
        if sub.status in (SubscriberStatus.ACTIVE, SubscriberStatus.PENDING):
            sub.status = SubscriberStatus.UNSUBSCRIBED
            sub.unsubscribed_at = now


def _preferences(sub: Subscriber) -> Preferences:
    if sub.email is None:
        raise InvalidTokenError("this reader's data has been deleted")
    return Preferences(email=sub.email, status=sub.status, cadence=sub.cadence,
                       paused=sub.paused)


def get_preferences(app: App, token: str) -> Preferences:
    """The reader's current preferences."""
    with app.sessions() as session:
        return _preferences(_subscriber_from(session, app, Purpose.PREFERENCES, token))


def update_preferences(app: App, token: str, cadence: Cadence | str, paused: bool) -> Preferences:
    """Change how often the reader gets mail, or pause it."""
    try:
        chosen = Cadence(cadence)
    except ValueError as exc:
        choices = ", ".join(c.value for c in Cadence)
        raise SubscriberError(f"unknown frequency {cadence!r}; choose one of {choices}") from exc
    with transaction(app.sessions) as session:
        sub = _subscriber_from(session, app, Purpose.PREFERENCES, token)
        _preferences(sub)  # a deleted reader has nothing to change
        sub.cadence = chosen
        sub.paused = paused
        return _preferences(sub)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def export_my_data(app: App, token: str) -> dict[str, Any]:
    """Everything kept about the reader, as a JSON-ready dict ("download my data")."""
    with app.sessions() as session:
        sub = _subscriber_from(session, app, Purpose.PREFERENCES, token)
        _preferences(sub)
        return {
            "email": sub.email,
            "name": sub.name,
            "status": sub.status.value,
            "cadence": sub.cadence.value,
            "paused": sub.paused,
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


def _erase(sub: Subscriber, now: datetime, reason: str) -> None:
    sub.email = None
    sub.name = None
    sub.consent_ip = None
    sub.status = SubscriberStatus.DELETED
    sub.unsubscribed_at = sub.unsubscribed_at or now
    sub.suppressed_reason = reason
    sub.link_key = new_link_key()  # every link mailed so far stops working


def delete_me(app: App, token: str, now: datetime | None = None) -> None:
    """Erase the reader's personal data; only the address hash stays, to block re-imports."""
    with transaction(app.sessions) as session:
        sub = _subscriber_from(session, app, Purpose.PREFERENCES, token)
        if sub.status is not SubscriberStatus.DELETED:
            _erase(sub, now or utcnow(), "deleted at the reader's request")


# --- the operator's list ----------------------------------------------------------------


def add(app: App, email: str, name: str | None = None, now: datetime | None = None) -> Subscriber:
    """Add a reader for the operator: active at once (no confirmation mail)."""
    now = now or utcnow()
    address = normalise(email, app.settings.blocked_domains)
    with transaction(app.sessions) as session:
        sub = _by_address(session, app, address)
        if sub is None:
            sub = Subscriber(email=address, email_hash=email_hash(address, app.address_key),
                             created_at=now, consent_at=now, consent_source="operator")
            session.add(sub)
        elif sub.status not in (SubscriberStatus.ACTIVE, SubscriberStatus.PENDING):
            raise SubscriberError(
                f"{address} is {sub.status.value}; only the reader can sign up again "
                "(through the signup page)"
            )
        sub.status = SubscriberStatus.ACTIVE
        sub.confirmed_at = sub.confirmed_at or now
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


def remove(app: App, email: str, now: datetime | None = None) -> bool:
    """Unsubscribe an address for the operator; False if it is not on the list."""
    now = now or utcnow()
    with transaction(app.sessions) as session:
        sub = _by_address(session, app, email)
        if sub is None:
            return False
        if sub.status in (SubscriberStatus.ACTIVE, SubscriberStatus.PENDING):
            sub.status = SubscriberStatus.UNSUBSCRIBED
            sub.unsubscribed_at = now
            sub.suppressed_reason = "removed by the operator"
        return True


def expire_pending(app: App, now: datetime | None = None) -> int:
    """Drop sign-ups not confirmed within DIGEST_CONFIRM_MAX_AGE_HOURS; returns how many.

    Never-confirmed rows are deleted (nothing was consented to); a returning reader who did
    not confirm again goes back to *unsubscribed*, keeping the record that blocks re-imports.
    """
    now = now or utcnow()
    cutoff = now - timedelta(hours=app.settings.confirm_max_age_hours)
    stale = (Subscriber.status == SubscriberStatus.PENDING) & (Subscriber.consent_at < cutoff)
    with transaction(app.sessions) as session:
        dropped = session.execute(
            delete(Subscriber).where(stale, Subscriber.confirmed_at.is_(None))
        )
        reverted = session.execute(
            update(Subscriber).where(stale, Subscriber.confirmed_at.is_not(None))
            .values(status=SubscriberStatus.UNSUBSCRIBED, unsubscribed_at=now)
        )
    return _count(dropped) + _count(reverted)


def _count(result: Result[Any]) -> int:
    return int(cast(CursorResult[Any], result).rowcount or 0)


# --- the reader's own pages: read-only checks, partial saves, coming back ---------------


def confirm_status(app: App, token: str) -> SubscriberStatus:
    """What a confirmation link would do, without doing it (the GET of the confirm page).

    Raises InvalidTokenError for a forged or expired link, or one whose sign-up is gone.
    """
    with app.sessions() as session:
        sub = _subscriber_from(session, app, Purpose.CONFIRM, token)
        if sub.status not in (SubscriberStatus.PENDING, SubscriberStatus.ACTIVE) or (
            sub.email is None
        ):
            raise InvalidTokenError("this link is no longer valid; please sign up again")
        return sub.status


def save_preferences(app: App, token: str, cadence: Cadence | str | None = None,
                     paused: bool | None = None) -> tuple[Preferences, Preferences]:
    """Change only what was given (None keeps the value); returns (before, after).

    A form that arrives without a field, or an empty POST, must never reset a reader's
    pause or frequency.
    """
    chosen = None
    if cadence is not None:
        try:
            chosen = Cadence(cadence)
        except ValueError as exc:
            choices = ", ".join(c.value for c in Cadence)
            raise SubscriberError(
                f"unknown frequency {cadence!r}; choose one of {choices}") from exc
    with transaction(app.sessions) as session:
        sub = _subscriber_from(session, app, Purpose.PREFERENCES, token)
        before = _preferences(sub)  # a deleted reader has nothing to change
        if chosen is not None:
            sub.cadence = chosen
        if paused is not None:
            sub.paused = paused
        return before, _preferences(sub)


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
        sub = _subscriber_from(session, app, Purpose.PREFERENCES, token)
        _preferences(sub)
        if sub.status is SubscriberStatus.UNSUBSCRIBED:
            sub.status = SubscriberStatus.ACTIVE
            sub.unsubscribed_at = None
            sub.suppressed_reason = None
            sub.confirmed_at = now
            sub.consent_at = now
            sub.consent_ip = ip
            sub.consent_source = "preferences"
        elif sub.status is not SubscriberStatus.ACTIVE:
            raise SubscriberError("this address cannot be resubscribed from here; "
                                  "please sign up again on the blog")
        return _preferences(sub)
