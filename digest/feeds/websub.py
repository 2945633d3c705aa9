"""WebSub (W3C): let the blog's hub push new posts within seconds; polling stays the fallback.

Subscribing POSTs ``hub.mode=subscribe`` with a per-feed secret, to a hub on a public address
only (the same guarded client as feeds). The hub then verifies our intent with a GET carrying
``hub.challenge``, which we echo only for a request we made and have not seen verified: same
topic, same mode, asked within ``_PENDING_FOR``; the lease it grants is capped at
``_MAX_LEASE``, so nobody can push it to 2036 and stop renewals. Each content distribution
is signed (``X-Hub-Signature: sha256=…``) with that secret; a body whose signature does not
match is acknowledged but ignored, as the spec requires. A valid body is stored through the
same code as a poll (``polling.ingest``), never hiding anything, because a push may carry
only the new entries.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import or_, select
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from digest.errors import FeedError, FeedFetchError
from digest.feeds.address_policy import AddressRefused
from digest.feeds.fetch import USER_AGENT, feed_client
from digest.feeds.parse import parse_feed
from digest.feeds.poll import ingest
from digest.feeds.report import PollReport
from digest.runtime import App
from digest.store.models import MAX_ID, Feed, FeedStatus, utcnow
from digest.store.sessions import transaction

__all__ = [
    "callback_url",
    "receive_content",
    "renew_due",
    "signature_valid",
    "subscribe_websub",
    "verify_intent",
]

_ALGORITHMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha384": hashlib.sha384,
               "sha512": hashlib.sha512}
_DEFAULT_LEASE = timedelta(days=10)
_MAX_LEASE = timedelta(days=10)
_RENEW_BEFORE = timedelta(days=1)
_PENDING_FOR = timedelta(days=1)  # how long a hub may take to verify our request

log = logging.getLogger(__name__)


def callback_url(app: App, feed_id: int) -> str:
    """Where the hub calls us back for ``feed_id``."""
    return f"{app.settings.base_url}/websub/{feed_id}"


@dataclass(frozen=True)
class _Secret:
    """``Feed.websub_secret`` plus the request awaiting the hub's verification, if any.

    Stored as ``"<secret>"`` or ``"<secret> <mode> <unix time asked>"`` in the one column
    (the secret is hex, so never holds a space); a pending renewal keeps the secret, so pushes
    signed with it stay valid meanwhile.
    """

    value: str
    pending: str | None = None
    asked_at: datetime | None = None

    @classmethod
    def load(cls, stored: str | None) -> _Secret | None:
        if not stored:
            return None
        parts = stored.split(" ")
        if len(parts) == 3 and parts[2].isdigit():
            return cls(parts[0], parts[1], datetime.fromtimestamp(int(parts[2]), UTC))
        return cls(parts[0])

    def dump(self) -> str:
        if self.pending is None or self.asked_at is None:
            return self.value
        return f"{self.value} {self.pending} {int(self.asked_at.timestamp())}"

    def awaits(self, mode: str, now: datetime) -> bool:
        """True while a ``mode`` request of ours is waiting for the hub's verification."""
        return (self.pending == mode and self.asked_at is not None
                and now - _PENDING_FOR <= self.asked_at <= now + timedelta(minutes=5))


def subscribe_websub(
    app: App, feed_id: int, client: httpx.Client | None = None, *, now: datetime | None = None
) -> str:
    """Ask the feed's hub to push updates to our callback; returns the hub URL.

    Without ``client`` the hub is reached only on a public address (or one the operator
    allows with DIGEST_FETCH_ALLOW_PRIVATE): the request carries the subscription secret.
    """
    now = now or utcnow()
    with transaction(app.sessions) as session:
        feed = session.get_one(Feed, feed_id)
        if not feed.hub_url:
            raise FeedError(feed.url, "the feed advertises no WebSub hub (rel=\"hub\")")
        # A renewal keeps the secret: pushes signed with it stay valid while the hub
        # verifies the renewal, and a failed renewal leaves the current one working.
        current = _Secret.load(feed.websub_secret)
        secret = current.value if current else secrets.token_hex(32)
        feed.websub_secret = _Secret(secret, "subscribe", now).dump()
        hub, topic = feed.hub_url, feed.topic_url or feed.url
    form = {
        "hub.mode": "subscribe",
        "hub.topic": topic,
        "hub.callback": callback_url(app, feed_id),
        "hub.secret": secret,
        "hub.lease_seconds": str(int(_DEFAULT_LEASE.total_seconds())),
    }
    own = client is None
    http = client or feed_client(app.settings.fetch_allow_private)
    try:
        response = http.post(
            hub, data=form, headers={"User-Agent": USER_AGENT}, timeout=app.settings.fetch_timeout
        )
    except AddressRefused as exc:
        raise FeedFetchError(hub, f"the WebSub hub was not asked: {exc}") from exc
    except httpx.HTTPError as exc:
        raise FeedFetchError(hub, f"the WebSub hub could not be reached: {exc}") from exc
    finally:
        if own:
            http.close()
    if response.status_code not in {202, 204}:
        raise FeedFetchError(
            hub, f"the WebSub hub refused the subscription: HTTP {response.status_code}",
            response.status_code,
        )
    return hub


def lease_for(lease_seconds: str | int | None) -> timedelta:
    """The lease a hub granted, capped at ``_MAX_LEASE``; the default when absent or absurd."""
    try:
        seconds = int(str(lease_seconds).strip()) if lease_seconds is not None else 0
    except ValueError:  # not a number, or thousands of digits
        seconds = 0
    if seconds <= 0:
        return _DEFAULT_LEASE
    return timedelta(seconds=min(seconds, int(_MAX_LEASE.total_seconds())))


def verify_intent(
    app: App,
    feed_id: int,
    *,
    mode: str,
    topic: str,
    challenge: str,
    lease_seconds: str | int | None = None,
    now: datetime | None = None,
) -> str | None:
    """The challenge to echo if we really asked for this (un)subscription, else None."""
    now = now or utcnow()
    if not 0 < feed_id <= MAX_ID or not challenge:
        return None
    with transaction(app.sessions) as session:
        feed = session.get(Feed, feed_id)
        if feed is None or topic not in {feed.topic_url or feed.url, feed.url}:
            return None
        secret = _Secret.load(feed.websub_secret)
        if mode == "subscribe" and secret is not None and secret.awaits(mode, now) \
                and feed.status != FeedStatus.GONE:
            feed.websub_lease_until = now + lease_for(lease_seconds)
            feed.websub_secret = _Secret(secret.value).dump()  # verified: no longer pending
            return challenge
        if mode == "unsubscribe" and (secret is None or secret.awaits(mode, now)):
            feed.websub_lease_until = None  # we hold no subscription, or asked to end it
            return challenge
    return None


def signature_valid(secret: str, body: bytes, header: str | None) -> bool:
    """True when ``X-Hub-Signature`` (``method=hexdigest``) matches ``body`` under ``secret``."""
    if not header or "=" not in header:
        return False
    method, _, given = header.partition("=")
    algorithm = _ALGORITHMS.get(method.strip().lower())
    if algorithm is None:
        return False
    expected = hmac.new(secret.encode(), body, algorithm).hexdigest()
    return hmac.compare_digest(expected, given.strip().lower())


def receive_content(
    app: App,
    feed_id: int,
    body: bytes,
    headers: Mapping[str, str],
    *,
    now: datetime | None = None,
) -> PollReport | None:
    """Store a pushed feed body if its signature is valid; None when it must be ignored."""
    if not 0 < feed_id <= MAX_ID:
        return None
    with app.sessions() as session:
        feed = session.get(Feed, feed_id)
        stored = _Secret.load(feed.websub_secret) if feed is not None else None
        if feed is None or stored is None or feed.status == FeedStatus.GONE:
            return None
        secret, url = stored.value, feed.url
    lowered = {k.lower(): v for k, v in headers.items()}
    if len(body) > app.settings.fetch_max_bytes:
        return None
    if not signature_valid(secret, body, lowered.get("x-hub-signature")):
        return None
    try:
        parsed = parse_feed(body, url, {"content-type": lowered.get("content-type", "")})
    except FeedError:
        return None
    try:
        return ingest(app, feed_id, parsed, now=now, full_page=False)
    except SQLAlchemyError as exc:
        if isinstance(exc, OperationalError):
            raise
        log.exception("a WebSub push for feed %s could not be stored", feed_id)
        return None  # acknowledged; the next poll stores what it can


def renew_due(
    app: App, *, now: datetime | None = None, client: httpx.Client | None = None
) -> list[str]:
    """Subscribe (or renew) every feed with a hub whose lease is missing or ends within a day.

    Only when ``BASE_URL`` is public https: a hub cannot call back a development address.
    Returns the hubs asked; a hub that fails is logged and retried at the next run.
    """
    if not app.settings.base_url.startswith("https://"):
        return []
    now = now or utcnow()
    with app.sessions() as session:
        due = list(session.scalars(
            select(Feed.id).where(
                Feed.hub_url.is_not(None),
                Feed.status != FeedStatus.GONE,
                or_(Feed.websub_lease_until.is_(None),
                    Feed.websub_lease_until < now + _RENEW_BEFORE),
            )
        ))
    asked = []
    for feed_id in due:
        try:
            asked.append(subscribe_websub(app, feed_id, client))
        except FeedError as exc:
            log.warning("WebSub subscription for feed %s failed: %s", feed_id, exc)
    return asked
