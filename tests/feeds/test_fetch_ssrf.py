"""SSRF: a feed, its redirects and its WebSub hub reach only public addresses.

The feed servers run on 127.0.0.1 (allowed in the test settings) and 127.0.0.2, which stands
for a machine on the operator's network that no feed may make this service talk to. Refused
addresses are refused before any connection, so nothing here leaves the machine.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from digest.cli import cli
from digest.errors import FeedFetchError
from digest.feeds.poll import poll_feed_url
from digest.feeds.websub import subscribe_websub
from digest.runtime import App
from digest.store.models import Feed, Post
from digest.store.sessions import transaction
from tests.feedserver import FeedServer, Item, wordpress_feed

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
FEED = wordpress_feed([Item(1, "Only post", NOW.timestamp() - 3600)])


@pytest.fixture
def inside() -> Iterator[FeedServer]:
    """A server on 127.0.0.2: the operator's network, never allowed in these tests."""
    with FeedServer("127.0.0.2") as running:
        running.set("/feed/", FEED)
        yield running


@pytest.fixture
def outside() -> Iterator[FeedServer]:
    """The allowed server on 127.0.0.1, playing the public internet."""
    with FeedServer() as running:
        yield running


def _allow(app: App, *entries: str) -> None:
    app.settings.fetch_allow_private = list(entries)


def _feed_row(app: App) -> Feed:
    with app.sessions() as session:
        return session.scalars(select(Feed)).one()


def test_loopback_is_refused_without_the_allowance_and_backs_off(
    app: App, outside: FeedServer
) -> None:
    outside.set("/feed/", FEED)
    _allow(app)
    report = poll_feed_url(app, outside.url("/feed/"), now=NOW)
    assert report.outcome == "failed"
    assert "127.0.0.1" in report.describe() and "DIGEST_FETCH_ALLOW_PRIVATE" in report.describe()
    assert outside.hits == []  # refused before connecting
    feed = _feed_row(app)
    assert feed.consecutive_failures == 1 and feed.next_poll_at is not None


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_to_a_private_address_is_refused(
    app: App, outside: FeedServer, inside: FeedServer, status: int
) -> None:
    outside.set("/feed/", status=status, location=inside.url("/feed/"))
    report = poll_feed_url(app, outside.url("/feed/"), now=NOW)
    assert report.outcome == "failed" and "refused to connect to 127.0.0.2" in report.describe()
    assert inside.hits == []
    with app.sessions() as session:
        assert session.scalars(select(Post)).all() == []
        assert session.scalars(select(Feed.url)).one() == outside.url("/feed/")  # not moved


def test_the_same_redirect_is_followed_once_the_operator_allows_it(
    app: App, outside: FeedServer, inside: FeedServer
) -> None:
    outside.set("/feed/", status=302, location=inside.url("/feed/"))
    _allow(app, "127.0.0.1", "127.0.0.0/30")
    report = poll_feed_url(app, outside.url("/feed/"), now=NOW)
    assert report.outcome == "new" and report.new_titles == ["Only post"]
    assert [h.target for h in inside.hits] == ["/feed/"]


@pytest.mark.parametrize(
    "target",
    [
        "http://10.255.255.1/feed/",
        "http://172.16.0.1/feed/",
        "http://192.168.0.1/feed/",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/feed/",
        "http://0.0.0.0:{port}/feed/",
        "http://[::1]:{port}/feed/",
        "http://[fd00::1]/feed/",
        "http://[fe80::1]/feed/",
        "http://[::ffff:127.0.0.2]:{port}/feed/",
        "http://[::ffff:10.0.0.1]/feed/",
        "http://2130706434:{port}/feed/",  # 127.0.0.2 written as one number
        "http://localhost:{port}/feed/",
    ],
)
def test_every_kind_of_non_public_address_is_refused_on_a_hop(
    app: App, outside: FeedServer, inside: FeedServer, target: str
) -> None:
    port = inside.base.rsplit(":", 1)[1]
    outside.set("/feed/", status=302, location=target.format(port=port))
    _allow(app, "127.0.0.1/32")
    report = poll_feed_url(app, outside.url("/feed/"), now=NOW)
    assert report.outcome == "failed" and "refused" in (report.error or "")
    assert inside.hits == []


def test_a_redirect_to_a_local_file_is_refused(app: App, outside: FeedServer) -> None:
    outside.set("/feed/", status=301, location="file:///etc/passwd")
    report = poll_feed_url(app, outside.url("/feed/"), now=NOW)
    assert report.outcome == "failed" and "not an http(s) URL" in (report.error or "")


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[list[str]]]:
    """Answers for made-up names, one list per lookup (the last one repeats)."""
    answers: dict[str, list[list[str]]] = {}
    real = socket.getaddrinfo

    def lookup(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in answers:
            return real(host, port, *args, **kwargs)
        queue = answers[name]
        ips = queue.pop(0) if len(queue) > 1 else queue[0]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, int(port))) for ip in ips]

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    return answers


def test_dns_rebinding_cannot_swap_the_checked_address(
    app: App, fake_dns: dict[str, list[list[str]]]
) -> None:
    """The name is resolved once; the connection goes to that checked address."""
    with FeedServer("127.0.0.2") as inside:
        port = int(inside.base.rsplit(":", 1)[1])
        inside.set("/feed/", FEED)
        with FeedServer("127.0.0.1", port) as outside:
            outside.set("/feed/", FEED)
            fake_dns["feed.test"] = [["127.0.0.1"], ["127.0.0.2"]]  # then it rebinds
            report = poll_feed_url(app, f"http://feed.test:{port}/feed/", now=NOW)
            assert report.outcome == "new"
            assert [h.headers["Host"] for h in outside.hits] == [f"feed.test:{port}"]
            assert inside.hits == []


def test_a_name_with_any_private_answer_is_refused(
    app: App, outside: FeedServer, fake_dns: dict[str, list[list[str]]]
) -> None:
    outside.set("/feed/", FEED)
    port = outside.base.rsplit(":", 1)[1]
    fake_dns["mixed.test"] = [["127.0.0.1", "10.0.0.7"]]
    report = poll_feed_url(app, f"http://mixed.test:{port}/feed/", now=NOW)
    assert report.outcome == "failed" and "10.0.0.7" in (report.error or "")
    assert outside.hits == []


def test_a_host_name_can_be_allowed_whatever_it_resolves_to(
    app: App, inside: FeedServer, fake_dns: dict[str, list[list[str]]]
) -> None:
    port = inside.base.rsplit(":", 1)[1]
    fake_dns["intranet.test"] = [["127.0.0.2"]]
    _allow(app, "intranet.test")
    report = poll_feed_url(app, f"http://intranet.test:{port}/feed/", now=NOW)
    assert report.outcome == "new" and len(inside.hits) == 1


def test_a_hub_on_a_private_address_is_never_sent_the_secret(
    app: App, inside: FeedServer
) -> None:
    inside.set("/hub", status=202)
    with transaction(app.sessions) as session:
        feed = Feed(url="https://blog.example.org/feed/",
                    configured_url="https://blog.example.org/feed/",
                    hub_url=inside.url("/hub"), topic_url="https://blog.example.org/feed/")
        session.add(feed)
        session.flush()
        feed_id = feed.id
    with pytest.raises(FeedFetchError, match=r"refused to connect to 127\.0\.0\.2"):
        subscribe_websub(app, feed_id)
    assert inside.hits == []
    _allow(app, "127.0.0.2")
    assert subscribe_websub(app, feed_id) == inside.url("/hub")
    assert [h.target for h in inside.hits] == ["/hub"]


def test_digest_poll_reports_a_refused_hop_like_any_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, outside: FeedServer, inside: FeedServer
) -> None:
    outside.set("/feed/", status=302, location=inside.url("/feed/"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DIGEST_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("DIGEST_FEED_URL", outside.url("/feed/"))
    monkeypatch.setenv("DIGEST_FETCH_ALLOW_PRIVATE", "127.0.0.1")
    monkeypatch.setenv("DIGEST_OUTBOX_DIR", str(tmp_path / "outbox"))
    result = CliRunner().invoke(cli, ["poll"])
    assert result.exit_code == 1
    shown = " ".join(result.output.split())
    assert f"failed: redirected to {inside.url('/feed/')}, refused to connect to 127.0.0.2" \
        in shown
    assert "DIGEST_FETCH_ALLOW_PRIVATE" in result.output and "Traceback" not in result.output
    assert inside.hits == []
