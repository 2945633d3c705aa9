"""The console's "poll now" on one stored feed, and the health the feed list shows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from digest.config import SAMPLE_FEED
from digest.errors import FeedError
from digest.feeds.registry import add_feed, list_feeds, poll_now

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def test_poll_now_reports_new_unchanged_and_errors_with_backoff(app, tmp_path) -> None:
    path = tmp_path / "feed.xml"
    path.write_bytes(SAMPLE_FEED.read_bytes())
    added = add_feed(app, str(path))
    assert added.outcome == "new" and added.feed_id is not None
    again = poll_now(app, added.feed_id, now=T0)
    assert again.outcome == "unchanged"
    path.write_text("<html>not a feed</html>")
    failed = poll_now(app, added.feed_id, now=T0 + timedelta(minutes=1))
    assert failed.outcome == "failed" and "retrying with backoff" in (failed.error or "")
    [feed] = list_feeds(app)
    assert (feed.status, feed.failures) == ("failing", 1)
    assert feed.last_error and feed.next_poll_at == T0 + timedelta(minutes=31)
    # The operator asked: a backing-off feed is polled all the same.
    path.write_bytes(SAMPLE_FEED.read_bytes())
    healed = poll_now(app, added.feed_id, now=T0 + timedelta(minutes=2))
    assert healed.outcome == "unchanged"
    [feed] = list_feeds(app)
    assert (feed.status, feed.failures, feed.last_error, feed.next_poll_at) == (
        "active", 0, None, None)


@pytest.mark.parametrize("feed_id", [12345, 2**70, 0])
def test_poll_now_names_an_unknown_feed(app, feed_id) -> None:
    with pytest.raises(FeedError, match="no such feed"):
        poll_now(app, feed_id)


def test_remote_only_refuses_a_file_on_the_server(app, tmp_path) -> None:
    path = tmp_path / "feed.xml"
    path.write_bytes(SAMPLE_FEED.read_bytes())
    for given in (str(path), f"file://{path}", "relative/feed.xml"):
        report = add_feed(app, given, remote_only=True)
        assert report.outcome == "failed" and "only an http(s) URL" in (report.error or "")
    assert list_feeds(app) == []
    assert add_feed(app, str(path)).outcome == "new"  # the CLI's own file stays allowed
