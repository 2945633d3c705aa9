"""Polling a hostile, flaky feed: never miss a post, never repeat one, never break."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from digest.feeds.poll import poll_feed_url, poll_feeds
from digest.feeds.report import PollReport
from digest.runtime import App
from digest.store.models import Cadence, Edition, EditionStatus, Feed, FeedStatus, Post
from digest.store.sessions import transaction
from tests.feedserver import FeedServer, Item, wordpress_feed

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
HOUR = 3600.0
EPOCH = NOW - timedelta(days=30)  # every generated post is older than a week


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as running:
        yield running


def _items(ids: range | list[int], **kw: object) -> list[Item]:
    """Posts with ids in ``ids``, newest first; post N was published N hours after EPOCH."""
    return [
        Item(i, f"Post {i}", EPOCH.timestamp() + i * HOUR, **kw)  # type: ignore[arg-type]
        for i in sorted(ids, reverse=True)
    ]


def _posts(app: App) -> dict[str, Post]:
    with app.sessions() as session:
        return {p.title: p for p in session.scalars(select(Post).order_by(Post.id))}


def _feed(app: App) -> Feed:
    with app.sessions() as session:
        return session.scalars(select(Feed)).one()


def _poll(app: App, server: FeedServer, at: datetime = NOW, path: str = "/feed/") -> PollReport:
    return poll_feed_url(app, server.url(path), now=at)


def test_304_costs_one_request_and_changes_nothing(sqlite_app: App, server: FeedServer) -> None:
    server.set("/feed/", wordpress_feed(_items(range(1, 4))))
    _poll(sqlite_app, server)
    report = _poll(sqlite_app, server, NOW + timedelta(hours=1))
    assert report.outcome == "unchanged" and report.not_modified
    assert "304" in report.describe()
    assert [h.status for h in server.hits] == [200, 304]
    assert len(_posts(sqlite_app)) == 3


def test_301_moves_the_feed_and_the_new_url_is_used(sqlite_app: App, server: FeedServer) -> None:
    server.set("/new-feed/", wordpress_feed(_items(range(1, 4))))
    server.set("/feed/", status=301, location="/new-feed/")
    first = poll_feeds(sqlite_app, [server.url("/feed/")], now=NOW)[0]
    assert first.moved_to == server.url("/new-feed/")
    assert "moved permanently" in first.describe()
    feed = _feed(sqlite_app)
    assert feed.url == server.url("/new-feed/")
    assert feed.configured_url == server.url("/feed/")

    server.hits.clear()
    again = poll_feeds(sqlite_app, [server.url("/feed/")], now=NOW + timedelta(hours=1))[0]
    assert again.outcome == "unchanged"
    assert [h.target for h in server.hits] == ["/new-feed/"]
    assert len(_posts(sqlite_app)) == 3


def test_410_disables_the_feed_and_it_is_not_fetched_again(
    sqlite_app: App, server: FeedServer
) -> None:
    server.set("/feed/", b"gone", status=410, content_type="text/plain")
    report = _poll(sqlite_app, server)
    assert report.outcome == "gone"
    assert "410" in report.describe()
    assert _feed(sqlite_app).status == FeedStatus.GONE
    later = _poll(sqlite_app, server, NOW + timedelta(days=1))
    assert later.outcome == "gone"
    assert len(server.hits) == 1


def test_500_is_counted_backed_off_and_recovered(sqlite_app: App, server: FeedServer) -> None:
    server.set("/feed/", b"boom", status=500, content_type="text/plain")
    report = _poll(sqlite_app, server)
    assert report.outcome == "failed" and "500" in (report.error or "")
    feed = _feed(sqlite_app)
    assert feed.consecutive_failures == 1 and feed.status == FeedStatus.FAILING
    assert feed.next_poll_at is not None and feed.next_poll_at > NOW

    skipped = _poll(sqlite_app, server, NOW + timedelta(minutes=5))
    assert skipped.outcome == "skipped" and "backing off" in skipped.describe()
    assert skipped.describe().count(skipped.url) == 1  # the URL once, not again in "last:"
    assert len(server.hits) == 1

    _poll(sqlite_app, server, feed.next_poll_at + timedelta(seconds=1))
    feed = _feed(sqlite_app)
    assert feed.consecutive_failures == 2
    assert feed.next_poll_at is not None
    assert feed.next_poll_at - (NOW + timedelta(minutes=30, seconds=1)) >= timedelta(minutes=59)

    server.set("/feed/", wordpress_feed(_items(range(1, 3))))
    ok = poll_feeds(sqlite_app, [server.url("/feed/")], now=NOW + timedelta(minutes=6),
                    force=True)[0]
    assert ok.outcome == "new"
    feed = _feed(sqlite_app)
    assert (feed.consecutive_failures, feed.last_error, feed.status) == (0, None,
                                                                         FeedStatus.ACTIVE)


def test_read_timeout_is_a_failure_with_the_reason(sqlite_app: App, server: FeedServer) -> None:
    sqlite_app.settings.fetch_timeout = 0.3
    server.set("/feed/", wordpress_feed(_items(range(1, 3))), delay=1.5)
    report = _poll(sqlite_app, server)
    assert report.outcome == "failed" and "timed out" in (report.error or "")


def test_oversized_body_and_gzip_bomb_fail_without_touching_posts(
    sqlite_app: App, server: FeedServer
) -> None:
    server.set("/feed/", wordpress_feed(_items(range(1, 4))))
    _poll(sqlite_app, server)
    sqlite_app.settings.fetch_max_bytes = 50_000
    server.set("/feed/", wordpress_feed(_items(range(1, 4), content="<p>" + "x" * 60_000)))
    big = _poll(sqlite_app, server, NOW + timedelta(hours=1))
    assert big.outcome == "failed" and "cap" in (big.error or "")

    server.set("/feed/", raw_gzip=gzip.compress(b" " * 30_000_000))
    bomb = poll_feed_url(sqlite_app, server.url("/feed/"), now=NOW + timedelta(days=2),
                         force=True)
    assert bomb.outcome == "failed" and "cap" in (bomb.error or "")
    posts = _posts(sqlite_app)
    assert len(posts) == 3 and all(p.in_feed for p in posts.values())


def test_invalid_xml_with_usable_entries_is_stored_with_a_warning(
    sqlite_app: App, server: FeedServer
) -> None:
    broken = wordpress_feed(_items(range(1, 4))).replace(b"</channel></rss>", b"<item><title>x")
    server.set("/feed/", broken)
    report = _poll(sqlite_app, server)
    assert report.outcome == "new"
    assert report.warning
    assert {"Post 1", "Post 2", "Post 3"} <= set(_posts(sqlite_app))


def test_invalid_document_without_entries_never_hides_known_posts(
    sqlite_app: App, server: FeedServer
) -> None:
    server.set("/feed/", wordpress_feed(_items(range(1, 4))))
    _poll(sqlite_app, server)
    for garbage in (b"<html><body>Maintenance</body></html>", b"\x00\xff not xml <<<",
                    b'<?xml version="1.0"?><rss version="2.0"><channel><title>T'):
        server.set("/feed/", garbage, content_type="text/html")
        report = poll_feed_url(sqlite_app, server.url("/feed/"), now=NOW, force=True)
        assert report.outcome == "failed", garbage
        assert "nothing changed" in (report.error or "")
    posts = _posts(sqlite_app)
    assert len(posts) == 3 and all(p.in_feed for p in posts.values())


def test_valid_feed_with_no_items_is_empty_and_hides_nothing(
    sqlite_app: App, server: FeedServer
) -> None:
    server.set("/feed/", wordpress_feed(_items(range(1, 4))))
    _poll(sqlite_app, server)
    server.set("/feed/", wordpress_feed([]))
    report = _poll(sqlite_app, server, NOW + timedelta(hours=1))
    assert report.outcome == "empty"
    assert all(p.in_feed for p in _posts(sqlite_app).values())


def _billion_laughs() -> bytes:
    lol = ['<!ENTITY lol0 "lollollollollollollollollollol">'] + [
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)
    ]
    return (
        '<?xml version="1.0"?>\n<!DOCTYPE rss [\n' + "\n".join(lol) + "\n]>\n"
        '<rss version="2.0"><channel><title>T &lol9;</title>'
        "<item><title>Laughs &lol9;</title><link>https://blog.example.org/1/</link>"
        "<description>Body &lol9;</description></item></channel></rss>"
    ).encode()


def _quadratic_blowup() -> bytes:
    # One 100 KB entity used 2,000 times: 200 MB once expanded. feedparser alone keeps
    # such a "safe-looking" entity and expands it (seconds of CPU, hundreds of MB).
    return (
        '<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY big "' + "x" * 100_000 + '">\n]>\n'
        '<rss version="2.0"><channel><title>T</title><item><title>Quadratic</title>'
        "<link>https://blog.example.org/2/</link><description>"
        + "&big;" * 2000
        + "</description></item></channel></rss>"
    ).encode()


@pytest.mark.parametrize("document", [_billion_laughs, _quadratic_blowup])
def test_entity_expansion_cannot_blow_up(
    sqlite_app: App, server: FeedServer, document: object
) -> None:
    server.set("/feed/", document())  # type: ignore[operator]
    started = time.monotonic()
    report = _poll(sqlite_app, server)
    assert time.monotonic() - started < 3
    assert report.outcome == "new", report.describe()
    assert "DOCTYPE" in (report.warning or "")
    (post,) = _posts(sqlite_app).values()
    assert len(post.title) < 100 and len(post.summary) < 1000


def test_entity_declarations_outside_a_doctype_are_refused(
    sqlite_app: App, server: FeedServer
) -> None:
    server.set("/feed/", b'<?xml version="1.0"?><!ENTITY x "y"><rss version="2.0"></rss>')
    report = _poll(sqlite_app, server)
    assert report.outcome == "failed" and "entities" in (report.error or "")


def test_burst_of_25_posts_is_recovered_through_paged(app: App, server: FeedServer) -> None:
    def publish(ids: list[int]) -> None:
        items = _items(ids)
        for page in range(0, len(items), 10):
            target = "/feed/" if page == 0 else f"/feed/?paged={page // 10 + 1}"
            server.set(target, wordpress_feed(items[page : page + 10]))

    publish(list(range(1, 11)))
    _poll(app, server)
    publish(list(range(1, 36)))  # 25 new posts: page 1 and 2 are all new, page 3 overlaps
    report = _poll(app, server, NOW + timedelta(hours=1))
    assert report.outcome == "new"
    assert len(report.new_titles) == 25
    assert report.pages == 3
    assert "/feed/?paged=4" not in [h.target for h in server.hits]
    posts = _posts(app)
    assert len(posts) == 35
    assert all(posts[f"Post {i}"].announce for i in range(11, 36))
    assert all(posts[f"Post {i}"].in_feed for i in range(1, 36))


def test_gap_recovery_stops_at_a_404_and_at_max_pages(app: App, server: FeedServer) -> None:
    server.set("/feed/", wordpress_feed(_items(range(1, 11))))
    _poll(app, server)
    items = _items(range(100, 140))
    server.set("/feed/", wordpress_feed(items[:10]))
    server.set("/feed/?paged=2", wordpress_feed(items[10:20]))  # ?paged=3 is a 404
    report = _poll(app, server, NOW + timedelta(hours=1))
    assert len(report.new_titles) == 20 and report.pages == 2
    assert [h.target for h in server.hits][-2:] == ["/feed/?paged=2", "/feed/?paged=3"]

    app.settings.max_pages = 2
    more = _items(range(200, 240))
    for page in range(4):
        target = "/feed/" if page == 0 else f"/feed/?paged={page + 1}"
        server.set(target, wordpress_feed(more[page * 10 : page * 10 + 10]))
    server.hits.clear()
    bounded = _poll(app, server, NOW + timedelta(hours=2))
    assert len(bounded.new_titles) == 20
    assert [h.target for h in server.hits] == ["/feed/", "/feed/?paged=2"]


def test_edited_post_is_updated_not_announced_again(app: App, server: FeedServer) -> None:
    items = _items(range(1, 4))
    server.set("/feed/", wordpress_feed(items))
    _poll(app, server)
    before = _posts(app)["Post 3"]

    items[0].title = "Post 3 (corrected)"
    items[0].content = "<p>The corrected text of the post.</p>"
    server.set("/feed/", wordpress_feed(items))
    report = _poll(app, server, NOW + timedelta(hours=2))
    assert report.outcome == "updated" and report.updated == 1 and report.new_titles == []
    after = _posts(app)["Post 3 (corrected)"]
    assert after.id == before.id
    assert after.summary == "The corrected text of the post."
    assert after.first_seen_at == before.first_seen_at
    assert after.announce == before.announce
    assert len(_posts(app)) == 3


def test_post_deleted_before_sending_is_left_out(app: App, server: FeedServer) -> None:
    server.set("/feed/", wordpress_feed(_items(range(1, 6))))
    _poll(app, server, NOW - timedelta(hours=12))
    server.set("/feed/", wordpress_feed(_items(range(1, 8))))  # 6 and 7 are new
    assert _poll(app, server).new_titles == ["Post 7", "Post 6"]

    server.set("/feed/", wordpress_feed([i for i in _items(range(1, 8)) if i.post_id != 7]))
    report = _poll(app, server, NOW + timedelta(hours=1))
    assert report.hidden == 1 and "left out of the digest" in report.describe()
    posts = _posts(app)
    assert posts["Post 7"].in_feed is False
    assert all(posts[f"Post {i}"].in_feed for i in range(1, 7))

    server.set("/feed/", wordpress_feed(_items(range(1, 8))))  # it came back
    _poll(app, server, NOW + timedelta(hours=2))
    assert _posts(app)["Post 7"].in_feed is True


def test_post_that_falls_off_the_page_or_was_sent_is_not_hidden(
    app: App, server: FeedServer
) -> None:
    server.set("/feed/", wordpress_feed(_items(range(1, 11))))
    _poll(app, server, NOW - timedelta(hours=12))
    server.set("/feed/", wordpress_feed(_items(range(1, 14))[:10]))  # 3 new push 1-3 off
    _poll(app, server)
    sent = _posts(app)["Post 13"]
    with transaction(app.sessions) as session:
        session.add(Edition(key="weekly:test", cadence=Cadence.WEEKLY,
                            status=EditionStatus.SENT, post_ids=[sent.id]))
    server.set("/feed/", wordpress_feed([i for i in _items(range(1, 14))[:10]
                                         if i.post_id != 13]))
    report = _poll(app, server, NOW + timedelta(hours=1))
    assert report.hidden == 0
    assert all(p.in_feed for p in _posts(app).values())


def test_feed_without_guids_or_dates_polled_twice_repeats_nothing(
    app: App, server: FeedServer
) -> None:
    items = _items(range(1, 6), guid=False, date=False)
    server.set("/feed/", wordpress_feed(items), conditional=False)
    first = _poll(app, server)
    assert len(first.new_titles) == 5
    assert not any(p.announce for p in _posts(app).values())  # undated backlog: not news
    again = _poll(app, server, NOW + timedelta(hours=1))
    assert again.outcome == "unchanged" and again.new_titles == []
    assert len(_posts(app)) == 5

    items.insert(0, Item(6, "Post 6", 0, guid=False, date=False))
    server.set("/feed/", wordpress_feed(items), conditional=False)
    third = _poll(app, server, NOW + timedelta(hours=2))
    assert third.new_titles == ["Post 6"]
    assert _posts(app)["Post 6"].announce


def test_poll_feeds_reports_each_configured_feed(sqlite_app: App, server: FeedServer) -> None:
    server.set("/a/", wordpress_feed(_items(range(1, 3))))
    server.set("/b/", b"down", status=503, content_type="text/plain")
    sqlite_app.settings.feed_url = [server.url("/a/"), server.url("/b/")]
    reports = poll_feeds(sqlite_app, now=NOW)
    assert [r.outcome for r in reports] == ["new", "failed"]
    assert "2 new posts" in reports[0].describe()
    assert "503" in reports[1].describe()


@pytest.mark.parametrize("typo", ["htp:/blog.example.org/feed", "not-a-url", "https:/feed"])
def test_a_typo_is_reported_and_does_not_become_a_feed(sqlite_app: App, typo: str) -> None:
    report = poll_feed_url(sqlite_app, typo)
    assert report.outcome == "failed"
    assert "not an http(s) URL or an existing file" in report.describe() or \
        "host name is missing" in report.describe()
    with sqlite_app.sessions() as s:
        assert s.scalars(select(Feed)).first() is None


def test_304_by_last_modified_alone(sqlite_app: App, server: FeedServer) -> None:
    """A server without ETags: the stored Last-Modified makes the second poll a 304."""
    server.set("/feed/", wordpress_feed(_items(range(1, 3))), send_etag=False)
    _poll(sqlite_app, server)
    report = _poll(sqlite_app, server, NOW + timedelta(hours=1))
    assert report.outcome == "unchanged" and report.not_modified
    assert "If-Modified-Since" in server.hits[1].headers
    assert [h.status for h in server.hits] == [200, 304]
