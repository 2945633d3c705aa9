"""Fetching: timeouts, size cap, conditional GET, redirects and error mapping at the boundary."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from digest import __version__
from digest.errors import FeedFetchError, FeedGoneError
from digest.feeds.fetch import USER_AGENT, feed_client, fetch_feed
from tests.feedserver import FeedServer

BODY = b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title></channel></rss>'


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as running:
        yield running


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    """The client polls use, allowing only the test server's 127.0.0.1."""
    with feed_client(["127.0.0.1"]) as http:
        yield http


def _fetch(url: str, client: httpx.Client, **kw: object):
    options: dict[str, object] = {"timeout": 2.0, "max_bytes": 1_000_000, **kw}
    return fetch_feed(url, client=client, **options)  # type: ignore[arg-type]


def test_user_agent_names_the_project(server: FeedServer, client: httpx.Client) -> None:
    server.set("/feed/", BODY)
    _fetch(server.url("/feed/"), client)
    agent = server.hits[0].headers["User-Agent"]
    assert agent == USER_AGENT and agent.startswith(f"digest/{__version__} (")


def test_conditional_get_returns_304_with_no_body(server: FeedServer, client: httpx.Client) -> None:
    server.set("/feed/", BODY)
    first = _fetch(server.url("/feed/"), client)
    assert first.status == 200 and first.content == BODY and first.etag
    second = _fetch(server.url("/feed/"), client, etag=first.etag,
                    last_modified=first.last_modified)
    assert second.not_modified and second.content == b""
    assert server.hits[1].headers["If-None-Match"] == first.etag
    assert server.hits[1].headers["If-Modified-Since"] == first.last_modified


@pytest.mark.parametrize("status", [301, 308])
def test_permanent_redirect_reports_the_new_url(
    server: FeedServer, client: httpx.Client, status: int
) -> None:
    server.set("/new/", BODY)
    server.set("/old/", status=status, location="/new/")
    result = _fetch(server.url("/old/"), client)
    assert result.content == BODY
    assert result.moved_to == server.url("/new/")


def test_temporary_redirect_keeps_the_old_url(server: FeedServer, client: httpx.Client) -> None:
    server.set("/new/", BODY)
    server.set("/old/", status=302, location="/new/")
    assert _fetch(server.url("/old/"), client).moved_to is None


def test_redirect_loop_is_an_error(server: FeedServer, client: httpx.Client) -> None:
    server.set("/a/", status=301, location="/b/")
    server.set("/b/", status=301, location="/a/")
    with pytest.raises(FeedFetchError, match="redirects"):
        _fetch(server.url("/a/"), client)


@pytest.mark.parametrize(("status", "error"), [(404, FeedFetchError), (500, FeedFetchError),
                                               (503, FeedFetchError), (410, FeedGoneError)])
def test_http_errors_map_to_feed_errors_with_the_status(
    server: FeedServer, client: httpx.Client, status: int, error: type[Exception]
) -> None:
    server.set("/feed/", b"oops", status=status, content_type="text/plain")
    with pytest.raises(error) as caught:
        _fetch(server.url("/feed/"), client)
    assert caught.value.status == status  # type: ignore[attr-defined]
    assert type(caught.value) is error


def test_read_timeout_is_a_fetch_error_from_httpx(server: FeedServer, client: httpx.Client) -> None:
    server.set("/slow/", BODY, delay=1.5)
    with pytest.raises(FeedFetchError, match="timed out") as caught:
        _fetch(server.url("/slow/"), client, timeout=0.3)
    assert isinstance(caught.value.__cause__, httpx.TimeoutException)


def test_connection_refused_is_a_fetch_error(client: httpx.Client) -> None:
    with pytest.raises(FeedFetchError, match="network error") as caught:
        _fetch("http://127.0.0.1:1/feed/", client)
    assert isinstance(caught.value.__cause__, httpx.HTTPError)


def test_oversized_body_is_refused(server: FeedServer, client: httpx.Client) -> None:
    server.set("/big/", b"x" * 50_000)
    with pytest.raises(FeedFetchError, match="cap"):
        _fetch(server.url("/big/"), client, max_bytes=10_000)


def test_gzip_bomb_is_refused_by_its_inflated_size(
    server: FeedServer, client: httpx.Client
) -> None:
    bomb = gzip.compress(b"\0" * 20_000_000)
    assert len(bomb) < 100_000
    server.set("/bomb/", raw_gzip=bomb)
    with pytest.raises(FeedFetchError, match="cap"):
        _fetch(server.url("/bomb/"), client, max_bytes=1_000_000)


def test_gzip_body_is_decoded(server: FeedServer, client: httpx.Client) -> None:
    server.set("/feed/", BODY, gzip=True)
    assert _fetch(server.url("/feed/"), client).content == BODY


def _raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("deflate", zlib.compress),
        ("deflate", lambda b: _raw_deflate(b)),  # what some servers send as "deflate"
        ("gzip", lambda b: gzip.compress(b[:40]) + gzip.compress(b[40:])),  # two members
        ("gzip, deflate", lambda b: zlib.compress(gzip.compress(b))),
        ("identity, gzip", gzip.compress),
        ("x-gzip", gzip.compress),
    ],
)
def test_each_content_encoding_a_server_may_stack_is_decoded(
    server: FeedServer, client: httpx.Client, encoding: str, encode: object
) -> None:
    body = BODY * 5000  # long enough to take many pieces
    server.set("/feed/", encode(body), conditional=False,  # type: ignore[operator]
               headers={"Content-Encoding": encoding})
    assert _fetch(server.url("/feed/"), client, max_bytes=10_000_000).content == body


def test_local_file_and_file_url(tmp_path: Path, client: httpx.Client) -> None:
    path = tmp_path / "feed.xml"
    path.write_bytes(BODY)
    assert _fetch(str(path), client).content == BODY
    assert _fetch(path.as_uri(), client).content == BODY
    with pytest.raises(FeedFetchError, match="cannot read"):
        _fetch(str(tmp_path / "missing.xml"), client)
