"""WebSub (W3C): let the blog's hub push new posts within seconds; polling stays the fallback.

Subscribing POSTs ``hub.mode=subscribe`` with a per-feed secret. The hub then verifies our
intent with a GET carrying ``hub.challenge``, which we echo only for a subscription we asked
for. Each content distribution is signed (``X-Hub-Signature: sha256=…``) with that secret; a
body whose signature does not match is acknowledged but ignored, as the spec requires. A valid
body is stored through the same code as a poll (``polling.ingest``), never hiding anything,
because a push may carry only the new entries.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta

import httpx
from sqlalchemy import or_, select

from digest.db import transaction
from digest.errors import FeedError, FeedFetchError
from digest.feedparse import parse_feed
from digest.fetch import USER_AGENT
from digest.models import Feed, FeedStatus, utcnow
from digest.polling import PollReport, ingest
from digest.wiring import App

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
_RENEW_BEFORE = timedelta(days=1)

log = logging.getLogger(__name__)


def callback_url(app: App, feed_id: int) -> str:
    """Where the hub calls us back for ``feed_id``."""
    return f"{app.settings.base_url}/websub/{feed_id}"


def subscribe_websub(app: App, feed_id: int, client: httpx.Client | None = None) -> str:
    """Ask the feed's hub to push updates to our callback; returns the hub URL."""
    with transaction(app.sessions) as session:
        feed = session.get_one(Feed, feed_id)
        if not feed.hub_url:
            raise FeedError(feed.url, "the feed advertises no WebSub hub (rel=\"hub\")")
        # A renewal keeps the secret: pushes signed with it stay valid while the hub
        # verifies the renewal, and a failed renewal leaves the current one working.
        feed.websub_secret = feed.websub_secret or secrets.token_hex(32)
        hub, topic, secret = feed.hub_url, feed.topic_url or feed.url, feed.websub_secret
    form = {
        "hub.mode": "subscribe",
        "hub.topic": topic,
        "hub.callback": callback_url(app, feed_id),
        "hub.secret": secret,
        "hub.lease_seconds": str(int(_DEFAULT_LEASE.total_seconds())),
    }
    own = client is None
    http = client or httpx.Client()
    try:
        response = http.post(
            hub, data=form, headers={"User-Agent": USER_AGENT}, timeout=app.settings.fetch_timeout
        )
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


def verify_intent(
    app: App,
    feed_id: int,
    *,
    mode: str,
    topic: str,
    challenge: str,
    lease_seconds: int | None = None,
    now: datetime | None = None,
) -> str | None:
    """The challenge to echo if we really asked for this (un)subscription, else None."""
    now = now or utcnow()
    with transaction(app.sessions) as session:
        feed = session.get(Feed, feed_id)
        if feed is None or not challenge or topic not in {feed.topic_url, feed.url}:
            return None
        if mode == "subscribe" and feed.websub_secret and feed.status != FeedStatus.GONE:
            lease = timedelta(seconds=lease_seconds) if lease_seconds else _DEFAULT_LEASE
            feed.websub_lease_until = now + lease
            return challenge
        if mode == "unsubscribe" and not feed.websub_secret:
            feed.websub_lease_until = None
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
    with app.sessions() as session:
        feed = session.get(Feed, feed_id)
        if feed is None or not feed.websub_secret or feed.status == FeedStatus.GONE:
            return None
        secret, url = feed.websub_secret, feed.url
    lowered = {k.lower(): v for k, v in headers.items()}
    if len(body) > app.settings.fetch_max_bytes:
        return None
    if not signature_valid(secret, body, lowered.get("x-hub-signature")):
        return None
    try:
        parsed = parse_feed(body, url, {"content-type": lowered.get("content-type", "")})
    except FeedError:
        return None
    return ingest(app, feed_id, parsed, now=now, full_page=False)


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
