"""The stored feeds: listed with their posts, and a one-off feed removed with its posts."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from digest.errors import FeedError
from digest.feeds.registry import list_feeds, remove_feed
from digest.store.models import Feed, Post
from digest.store.sessions import transaction

CONFIGURED = "http://127.0.0.1:1/feed/"  # DIGEST_FEED_URL in the test settings
ONE_OFF = "https://other.example.org/feed/"


def _feed(app, url: str, posts: int) -> int:
    with transaction(app.sessions) as s:
        feed = Feed(url=url, configured_url=url, title=url.split("/")[2])
        s.add(feed)
        s.flush()
        for n in range(posts):
            s.add(Post(feed_id=feed.id, identity=f"{url}{n}", link=f"{url}{n}", title=f"T{n}",
                       content_hash=f"h{n}"))
        return feed.id


def test_list_names_each_feed_its_posts_and_whether_it_is_configured(app) -> None:
    _feed(app, CONFIGURED, 2)
    other = _feed(app, ONE_OFF, 3)
    listed = {f.url: f for f in list_feeds(app)}
    assert (listed[CONFIGURED].posts, listed[CONFIGURED].configured) == (2, True)
    assert (listed[ONE_OFF].posts, listed[ONE_OFF].configured) == (3, False)
    assert listed[ONE_OFF].id == other


def test_remove_deletes_a_one_off_feed_and_its_posts(app) -> None:
    _feed(app, CONFIGURED, 2)
    other = _feed(app, ONE_OFF, 3)
    removed = remove_feed(app, f"#{other}")
    assert (removed.url, removed.posts) == (ONE_OFF, 3)
    assert [f.url for f in list_feeds(app)] == [CONFIGURED]
    with app.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Post)) == 2


def test_remove_refuses_a_configured_or_unknown_feed(app) -> None:
    _feed(app, CONFIGURED, 1)
    with pytest.raises(FeedError, match="remove it from that setting first"):
        remove_feed(app, CONFIGURED)
    with pytest.raises(FeedError, match="digest feeds list"):
        remove_feed(app, ONE_OFF)
    assert [f.url for f in list_feeds(app)] == [CONFIGURED]


def test_a_scheduled_poll_reads_every_stored_feed_but_a_gone_one(app) -> None:
    """After the first poll the database is the record: a feed added later (CLI, console) is
    polled on schedule with DIGEST_FEED_URL's; one gone for good (410) is not."""
    from digest.feeds.poll import scheduled_urls
    from digest.store.models import FeedStatus

    added = "https://added.example.org/feed/"
    gone = "https://gone.example.org/feed/"
    _feed(app, CONFIGURED, 0)  # stored under the configured URL: listed once
    _feed(app, added, 0)
    gone_id = _feed(app, gone, 0)
    with transaction(app.sessions) as s:
        s.get(Feed, gone_id).status = FeedStatus.GONE
    assert scheduled_urls(app) == [CONFIGURED, added]
    removed = remove_feed(app, added)
    assert removed.url == added and scheduled_urls(app) == [CONFIGURED]
