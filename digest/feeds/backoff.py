"""A failing feed waits before its next poll: 30 minutes, doubling to a day; success resets it."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from digest.errors import FeedError
from digest.feeds.fetch import FetchResult
from digest.feeds.parse import ParsedFeed
from digest.runtime import App
from digest.store.bounded import clean, clip, fit_or_none
from digest.store.models import Feed, FeedStatus
from digest.store.sessions import transaction

_BACKOFF_BASE = timedelta(minutes=30)


_BACKOFF_MAX = timedelta(hours=24)


def skip_reason(feed: Feed, now: datetime) -> str | None:
    if feed.status == FeedStatus.GONE:
        return f"disabled: {feed.last_error or 'the server answered 410 Gone'}"
    if feed.next_poll_at is not None and feed.next_poll_at > now:
        last = (feed.last_error or "unknown").removeprefix(f"{feed.url}: ")  # URL is shown once
        return (
            f"backing off after {feed.consecutive_failures} failure(s) "
            f"(last: {last}); next try after {feed.next_poll_at:%Y-%m-%d %H:%M} UTC"
        )
    return None


def record_success(
    app: App, feed_id: int, fetched: FetchResult, parsed: ParsedFeed | None, now: datetime
) -> None:
    with transaction(app.sessions) as session:
        feed = session.get_one(Feed, feed_id)
        if fetched.moved_to and fetched.moved_to != feed.url and len(fetched.moved_to) <= 2000:
            taken = session.scalars(select(Feed.id).where(Feed.url == fetched.moved_to)).first()
            if taken is None:
                feed.url = fetched.moved_to
        if not fetched.not_modified:  # a validator too long to store: the next GET is plain
            feed.etag = fit_or_none(fetched.etag, 500)
            feed.last_modified = fit_or_none(fetched.last_modified, 100)
        if parsed is not None:
            feed.title = clip(parsed.title, 500) if parsed.title else feed.title
            feed.site_url = fit_or_none(parsed.site_url, 2000) or feed.site_url
            hub, topic = fit_or_none(parsed.hub_url, 2000), fit_or_none(parsed.self_url, 2000)
            feed.hub_url = hub if topic or not parsed.self_url else None  # a hub needs its topic
            feed.topic_url = topic
        feed.status = FeedStatus.ACTIVE
        feed.consecutive_failures = 0
        feed.last_error = None
        feed.last_polled_at = now
        feed.next_poll_at = None


def record_failure(app: App, feed_id: int, exc: FeedError, now: datetime, *, gone: bool) -> int:
    with transaction(app.sessions) as session:
        feed = session.get_one(Feed, feed_id)
        feed.consecutive_failures = (feed.consecutive_failures or 0) + 1
        feed.last_error = clean(str(exc))
        feed.last_polled_at = now
        if gone:
            feed.status = FeedStatus.GONE
            feed.next_poll_at = None
        else:
            feed.status = FeedStatus.FAILING
            delay = _BACKOFF_BASE * 2 ** min(feed.consecutive_failures - 1, 10)
            feed.next_poll_at = now + min(delay, _BACKOFF_MAX)
        return feed.consecutive_failures
