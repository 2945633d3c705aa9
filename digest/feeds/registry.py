"""The feeds stored in the database: list them with their health, add one, remove one, poll
one now.

``digest poll`` reads the feeds of DIGEST_FEED_URL, but every feed ever polled keeps its row
and its posts, and each digest draws on all stored posts: a one-off ``poll --feed URL`` would
otherwise feed every later digest. Removing a stored feed deletes it with its posts (digests
already sent keep their own copy). A feed named in DIGEST_FEED_URL is not removed here: the
next poll would bring it back, so the setting is what to change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, or_, select

from digest.errors import FeedError
from digest.feeds.fetch import is_local
from digest.feeds.poll import poll_feed_url, poll_feeds
from digest.feeds.report import PollReport
from digest.runtime import App
from digest.store.models import MAX_ID, Feed, Post
from digest.store.sessions import transaction


@dataclass(frozen=True)
class StoredFeed:
    """A feed row as the operator sees it."""

    id: int
    url: str
    title: str | None
    status: str
    posts: int
    last_polled_at: datetime | None
    configured: bool  # named in DIGEST_FEED_URL (which seeds the database)
    failures: int = 0  # consecutive failed polls
    last_error: str | None = None
    next_poll_at: datetime | None = None  # set while backing off after failures
    websub_lease_until: datetime | None = None


@dataclass(frozen=True)
class RemovedFeed:
    """What ``remove_feed`` deleted."""

    url: str
    posts: int


def _configured(app: App, feed: Feed) -> bool:
    wanted = set(app.settings.feed_urls)
    return feed.url in wanted or feed.configured_url in wanted


def list_feeds(app: App) -> list[StoredFeed]:
    """Every stored feed, with its post count and whether DIGEST_FEED_URL names it."""
    with app.sessions() as session:
        counts = {int(feed_id): int(n) for feed_id, n in session.execute(
            select(Post.feed_id, func.count()).group_by(Post.feed_id))}
        return [StoredFeed(f.id, f.url, f.title, f.status.value, int(counts.get(f.id, 0)),
                           f.last_polled_at, _configured(app, f), f.consecutive_failures or 0,
                           f.last_error, f.next_poll_at, f.websub_lease_until)
                for f in session.scalars(select(Feed).order_by(Feed.id))]


def _find(app: App, which: str) -> Feed | None:
    key = which.strip().lstrip("#")
    with app.sessions() as session:
        if key.isdigit():
            return session.get(Feed, int(key))
        return session.scalars(select(Feed).where(
            or_(Feed.url == which.strip(), Feed.configured_url == which.strip()))
            .order_by(Feed.id)).first()


def remove_feed(app: App, which: str) -> RemovedFeed:
    """Delete the stored feed ``which`` (its URL or id) and its posts."""
    feed = _find(app, which)
    if feed is None:
        raise FeedError(which, "no such feed is stored (see `digest feeds list`)")
    if _configured(app, feed):
        raise FeedError(feed.url, "it is in DIGEST_FEED_URL and the next poll would add it "
                                  "again; remove it from that setting first")
    with transaction(app.sessions) as session:
        gone = session.execute(delete(Post).where(Post.feed_id == feed.id))
        session.execute(delete(Feed).where(Feed.id == feed.id))
    return RemovedFeed(feed.url, int(getattr(gone, "rowcount", 0) or 0))


REMOTE_ONLY = ("only an http(s) URL can be added here; a feed file on the server is added "
               "with `digest feeds add PATH`")


def add_feed(app: App, url: str, *, remote_only: bool = False) -> PollReport:
    """Store a feed by polling it once, as ``poll --feed URL`` does.

    From then on it is polled on schedule with the others (``poll.scheduled_urls``). A new feed
    whose first poll fails is not kept, so a mistyped URL leaves nothing to remove.
    ``remote_only`` (the web console) refuses a file on the server: whoever holds a console
    session must not be able to make the server read its own files.
    """
    if remote_only and is_local(url.strip()):
        return PollReport(url=url.strip(), outcome="failed", error=REMOTE_ONLY)
    known = _find(app, url) is not None
    report = poll_feeds(app, [url.strip()])[0]
    if not known and report.outcome in {"failed", "gone"} and report.feed_id is not None:
        with transaction(app.sessions) as session:
            session.execute(delete(Post).where(Post.feed_id == report.feed_id))
            session.execute(delete(Feed).where(Feed.id == report.feed_id))
    return report


def poll_now(app: App, feed_id: int, now: datetime | None = None) -> PollReport:
    """Poll stored feed ``feed_id`` at once, backoff or not (the operator asked); its report
    says what came of it (new posts, not modified, or the error and the next try)."""
    with app.sessions() as session:
        feed = session.get(Feed, feed_id) if 0 < feed_id <= MAX_ID else None
        if feed is None:
            raise FeedError(f"#{feed_id}", "no such feed is stored (see `digest feeds list`)")
        url = feed.url
    return poll_feed_url(app, url, now=now, force=True)
