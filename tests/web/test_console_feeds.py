"""The console's feeds page: health, add, poll now with its result, remove after confirming."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from digest.config import SAMPLE_FEED
from digest.store.models import Feed, Post
from digest.store.sessions import transaction
from tests.feedserver import FeedServer
from tests.web.console_client import signed_in_client

CONFIGURED = "http://127.0.0.1:1/feed/"  # DIGEST_FEED_URL in the test settings


def _feeds(app) -> dict[str, int]:
    with app.sessions() as s:
        return {url: feed_id for feed_id, url in s.execute(select(Feed.id, Feed.url))}


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as running:
        yield running


def test_add_poll_and_remove_a_feed(app, server, tmp_path):
    server.set("/feed/", SAMPLE_FEED.read_bytes())
    url = server.url("/feed/")
    client, csrf = signed_in_client(app)
    empty = client.get("/admin/feeds")
    assert empty.status_code == 200 and "No feed is stored yet" in empty.text

    added = client.post("/admin/feeds/add", data={"csrf_token": csrf, "url": url})
    assert added.status_code == 200, added.text
    result = re.search(r'data-testid="poll-result">([^<]+)<', added.text)
    assert result and "new post" in result.group(1)
    feed_id = _feeds(app)[url]
    assert f'id="feed-{feed_id}"' in added.text

    missing = client.post("/admin/feeds/add",
                          data={"csrf_token": csrf, "url": server.url("/nothing/")})
    assert missing.status_code == 400 and "404" in missing.text
    assert list(_feeds(app)) == [url]  # a feed whose first poll fails is not kept

    polled = client.post(f"/admin/feeds/{feed_id}/poll", data={"csrf_token": csrf})
    assert polled.status_code == 200
    assert re.search(r'data-testid="poll-result">[^<]*unchanged \(304 Not Modified\)',
                     polled.text)

    server.set("/feed/", "<html>not a feed</html>", content_type="text/html")
    broken = client.post(f"/admin/feeds/{feed_id}/poll", data={"csrf_token": csrf})
    assert re.search(r'class="notice error"[^>]*data-testid="poll-result"', broken.text)
    health = re.search(r'data-testid="feed-health">(.*?)</td>', broken.text, re.S)
    assert health and "failing: 1 failure in a row" in health.group(1)
    assert "next try" in health.group(1) and 'data-testid="feed-error"' in health.group(1)

    ask = client.post(f"/admin/feeds/{feed_id}/remove", data={"csrf_token": csrf})
    assert ask.status_code == 200 and 'data-testid="confirm-remove"' in ask.text
    assert url in _feeds(app)
    forged = client.post(f"/admin/feeds/{feed_id}/remove", data={"confirm": "yes"})
    assert forged.status_code == 403 and url in _feeds(app)
    done = client.post(f"/admin/feeds/{feed_id}/remove",
                       data={"csrf_token": csrf, "confirm": "yes"})
    assert done.status_code == 303
    assert _feeds(app) == {}
    with app.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Post)) == 0
    assert "removed" in client.get(done.headers["location"]).text
    assert client.post(f"/admin/feeds/{feed_id}/poll",
                       data={"csrf_token": csrf}).status_code == 404


def test_the_console_never_reads_a_file_on_the_server(app, tmp_path):
    path = tmp_path / "blog.xml"
    path.write_bytes(SAMPLE_FEED.read_bytes())
    client, csrf = signed_in_client(app)
    for given in (str(path), f"file://{path}", "/etc/passwd", "~/.ssh/id_rsa"):
        refused = client.post("/admin/feeds/add", data={"csrf_token": csrf, "url": given})
        assert refused.status_code == 400
        assert "only an http(s) URL can be added here" in refused.text
    assert _feeds(app) == {}


def test_a_configured_feed_is_not_removed_here(app):
    with transaction(app.sessions) as s:
        s.add(Feed(url=CONFIGURED, configured_url=CONFIGURED, title="The blog"))
    feed_id = _feeds(app)[CONFIGURED]
    client, csrf = signed_in_client(app)
    page = client.get("/admin/feeds")
    assert "The blog" in page.text and 'data-testid="remove-form"' not in page.text
    refused = client.post(f"/admin/feeds/{feed_id}/remove",
                          data={"csrf_token": csrf, "confirm": "yes"})
    assert refused.status_code == 409 and "DIGEST_FEED_URL" in refused.text
    assert CONFIGURED in _feeds(app)
