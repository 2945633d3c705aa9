"""Feed values longer than their columns (or holding NUL) never crash a poll or an edition.

PostgreSQL refuses them where SQLite stores anything, so every test runs on both.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DataError

from digest.delivery.editions import claim_edition
from digest.feeds import poll as polling
from digest.feeds.poll import poll_feed_url, poll_feeds
from digest.runtime import App
from digest.store.models import EditionStatus, Feed, FeedStatus, Post
from tests.feedserver import FeedServer, Item, wordpress_feed

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
LONG_URL = "https://blog.example.org/" + "a" * 2500


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as running:
        yield running


def _hostile_feed() -> bytes:
    title = "Word " * 240  # 1,200 characters
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"
     xmlns:media="http://search.yahoo.com/mrss/">
<channel><title>{"Channel " * 100}</title><link>{LONG_URL}</link>
<atom:link href="{LONG_URL}/feed" rel="self"/><atom:link href="{LONG_URL}/hub" rel="hub"/>
<item><title>{title}</title><link>{LONG_URL}/post</link><guid>{LONG_URL}/guid</guid>
<author>{"Author " * 60}</author><media:thumbnail url="{LONG_URL}.jpg"/>
<pubDate>Mon, 02 Mar 2026 10:00:00 GMT</pubDate><description>Text.</description></item>
<item><title>Null&#0;in the title</title><link>https://blog.example.org/2</link>
<author>x&#0;y</author><pubDate>Mon, 02 Mar 2026 09:00:00 GMT</pubDate></item>
</channel></rss>""".encode()


def test_long_validators_links_and_titles_are_stored_under_their_limits(
    app: App, server: FeedServer
) -> None:
    server.set("/feed/", _hostile_feed(), conditional=False,
               headers={"ETag": '"' + "e" * 600 + '"', "Last-Modified": "Mon, " + "x" * 150})
    report = poll_feed_url(app, server.url("/feed/"), now=NOW)
    assert report.outcome == "new", report.describe()
    with app.sessions() as session:
        feed = session.scalars(select(Feed)).one()
        posts = list(session.scalars(select(Post).order_by(Post.id)))
    assert feed.etag is None and feed.last_modified is None  # dropped, not cut
    assert feed.site_url is None and feed.hub_url is None and feed.topic_url is None
    assert feed.title is not None and len(feed.title) <= 500
    long_post, null_post = posts
    assert len(long_post.title) <= 1000 and long_post.title.startswith("Word Word")
    assert long_post.link == "" and long_post.guid is None and long_post.thumbnail_url is None
    assert long_post.author is not None and len(long_post.author) <= 300
    assert null_post.title == "Nullin the title" and null_post.author == "xy"
    again = poll_feed_url(app, server.url("/feed/"), now=NOW)  # unconditional, no error
    assert again.outcome == "unchanged" and "If-None-Match" not in server.hits[-1].headers


def test_a_1200_character_title_still_makes_the_edition(app: App, server: FeedServer) -> None:
    title = "Long " * 240
    server.set("/feed/", wordpress_feed([Item(1, title.strip(), NOW.timestamp() - 3600)]))
    assert poll_feed_url(app, server.url("/feed/"), now=NOW).outcome == "new"
    edition = claim_edition(app, now=NOW)
    assert edition is not None and edition.status == EditionStatus.SENDING
    assert 0 < len(edition.subject) <= 998 and "Long Long" in edition.subject
    assert len(edition.post_ids) == 1


def test_one_feed_that_cannot_be_stored_never_stops_the_others(
    app: App, server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the database refuses for one feed is that feed's failure, with backoff."""
    real = polling.store_entries

    def refusing(session, feed, entries, **kw):  # type: ignore[no-untyped-def]
        if feed.url.endswith("/bad/"):
            raise DataError("INSERT ...", {}, Exception("value too long for type"))
        return real(session, feed, entries, **kw)

    monkeypatch.setattr(polling, "store_entries", refusing)
    server.set("/bad/", wordpress_feed([Item(1, "Bad one", NOW.timestamp() - 60)]))
    server.set("/good/", wordpress_feed([Item(2, "Good one", NOW.timestamp() - 60)]))
    reports = poll_feeds(app, [server.url("/bad/"), server.url("/good/")], now=NOW)
    assert [r.outcome for r in reports] == ["failed", "new"]
    assert "could not be stored" in reports[0].describe()
    with app.sessions() as session:
        bad = session.scalars(select(Feed).where(Feed.url == server.url("/bad/"))).one()
        titles = list(session.scalars(select(Post.title)))
    assert bad.status == FeedStatus.FAILING and bad.consecutive_failures == 1
    assert bad.next_poll_at is not None and titles == ["Good one"]


def test_a_feed_url_longer_than_its_column_is_refused_plainly(app: App) -> None:
    report = poll_feed_url(app, LONG_URL + "/feed/", now=NOW)
    assert report.outcome == "failed" and "longer than 2000" in report.describe()


def test_an_unexpected_error_in_one_feed_is_its_failure_with_backoff(
    app: App, server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = polling.parse_feed

    def breaking(content: bytes, url: str, headers: object = None):  # type: ignore[no-untyped-def]
        if url.endswith("/bad/"):
            raise RecursionError("maximum recursion depth exceeded")
        return real(content, url, headers)  # type: ignore[arg-type]

    monkeypatch.setattr(polling, "parse_feed", breaking)
    server.set("/bad/", wordpress_feed([Item(1, "Bad one", NOW.timestamp() - 60)]))
    server.set("/good/", wordpress_feed([Item(2, "Good one", NOW.timestamp() - 60)]))
    reports = poll_feeds(app, [server.url("/bad/"), server.url("/good/")], now=NOW)
    assert [r.outcome for r in reports] == ["failed", "new"]
    assert "RecursionError" in reports[0].describe()
    with app.sessions() as session:
        bad = session.scalars(select(Feed).where(Feed.url == server.url("/bad/"))).one()
    assert bad.consecutive_failures == 1 and bad.next_poll_at is not None
