"""Fetch a feed's bytes from a server we do not control, or from a local file.

feedparser has no timeout and no size limit, so the bytes are fetched here with httpx:
connect and read timeouts, a cap on the *decoded* size while streaming, a User-Agent naming
the project, conditional GET, and redirects followed by hand so that a permanent move (301/308)
can update the stored URL and every hop goes through the same client. That client
(``feed_client``) refuses non-public addresses on each connection (``digest.feeds.address_policy``).

Content-Encoding is decoded here, not by httpx: httpx inflates a whole network chunk through
every listed encoding at once, so ``gzip, gzip`` turns 2 KB into 1 GiB before any cap can
look. Here each layer inflates at most ``_PIECE`` bytes at a time and the cap is checked on
every piece, whatever the stack. Every failure becomes a ``FeedFetchError`` at the boundary.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from digest import __version__
from digest.errors import FeedFetchError, FeedGoneError
from digest.feeds.address_policy import AddressPolicy, AddressRefused, guarded_client

__all__ = ["USER_AGENT", "FetchResult", "feed_client", "fetch_feed", "is_local", "local_path"]

USER_AGENT = f"digest/{__version__} (self-hosted newsletter digest; python-httpx)"
FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8"
)
_MAX_REDIRECTS = 5
_PERMANENT = frozenset({301, 308})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_PIECE = 64 * 1024  # the most one decoding layer inflates at a time
_MAX_LAYERS = 4  # more stacked encodings than any real server sends


@dataclass(frozen=True)
class FetchResult:
    """What a fetch brought back: a 200 with bytes, or a 304 with none."""

    url: str  # the URL the bytes came from (after redirects)
    status: int
    content: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    moved_to: str | None = None  # set when only permanent redirects led to ``url``

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def is_local(url: str) -> bool:
    """True for a file:// URL or a plain filesystem path (the demo's bundled feed)."""
    scheme = urlsplit(url).scheme.lower()
    return scheme == "file" or scheme not in {"http", "https"}


def local_path(url: str) -> Path:
    """The filesystem path behind a file:// URL or a plain path."""
    parts = urlsplit(url)
    if parts.scheme.lower() == "file":
        return Path(unquote(parts.path))
    return Path(url).expanduser()


def feed_client(allow_private: Iterable[str] = ()) -> httpx.Client:
    """The client for feeds and hubs: public addresses only, unless the operator allows."""
    return guarded_client(
        AddressPolicy.from_setting(allow_private), headers={"User-Agent": USER_AGENT}
    )


def fetch_feed(
    url: str,
    *,
    client: httpx.Client,
    timeout: float,
    max_bytes: int,
    etag: str | None = None,
    last_modified: str | None = None,
) -> FetchResult:
    """Fetch ``url`` (http(s), file:// or a path) with timeouts, a size cap and conditional GET."""
    if is_local(url):
        return _read_local(url, max_bytes)
    headers = {"User-Agent": USER_AGENT, "Accept": FEED_ACCEPT,
               "Accept-Encoding": "gzip, deflate"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    limits = httpx.Timeout(timeout, connect=min(timeout, 10.0))
    current, permanent = url, True
    for _ in range(_MAX_REDIRECTS + 1):
        try:
            with client.stream(
                "GET", current, headers=headers, timeout=limits, follow_redirects=False
            ) as response:
                if response.status_code in _REDIRECTS and "location" in response.headers:
                    permanent = permanent and response.status_code in _PERMANENT
                    current = _next_hop(current, response.headers["location"])
                    continue
                _raise_for_status(current, response.status_code)
                content = b"" if response.status_code == 304 else _read_capped(
                    current, response, max_bytes, time.monotonic() + 3 * timeout
                )
                return FetchResult(
                    url=current,
                    status=response.status_code,
                    content=content,
                    headers=dict(response.headers),
                    etag=response.headers.get("etag"),
                    last_modified=response.headers.get("last-modified"),
                    moved_to=current if permanent and current != url else None,
                )
        except httpx.TimeoutException as exc:
            raise FeedFetchError(
                current, f"timed out after {timeout:g} s ({type(exc).__name__})"
            ) from exc
        except AddressRefused as exc:
            hop = "" if current == url else f"redirected to {current[:300]}, "
            raise FeedFetchError(current, f"{hop}{exc}") from exc
        except (httpx.DecodingError, zlib.error) as exc:
            raise FeedFetchError(current, f"the body could not be decoded: {exc}") from exc
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise FeedFetchError(current, f"network error: {exc or type(exc).__name__}") from exc
    raise FeedFetchError(url, f"more than {_MAX_REDIRECTS} redirects")


def _next_hop(current: str, location: str) -> str:
    """Where a redirect points; only http(s) (a feed must not redirect to a local file)."""
    target = urljoin(current, location.strip())
    if urlsplit(target).scheme.lower() not in {"http", "https"} or not urlsplit(target).netloc:
        raise FeedFetchError(current, f"redirected to {target[:200]!r}, which is not an "
                             "http(s) URL; refused")
    return target


def _raise_for_status(url: str, status: int) -> None:
    if status == 410:
        raise FeedGoneError(url, "410 Gone: the feed was removed; the feed is disabled", 410)
    if status == 304 or 200 <= status < 300:
        return
    if status == 404:
        raise FeedFetchError(url, "404 Not Found: check the feed URL", 404)
    if status in {401, 403}:
        raise FeedFetchError(url, f"HTTP {status}: the server refused access", status)
    if status == 429 or status >= 500:
        raise FeedFetchError(url, f"HTTP {status}: the server failed; will retry later", status)
    raise FeedFetchError(url, f"HTTP {status}", status)


def _read_capped(
    url: str, response: httpx.Response, max_bytes: int, deadline: float
) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FeedFetchError(url, f"the body ({declared} bytes) is over the {max_bytes}-byte cap")
    chunks: list[bytes] = []
    size = 0
    decoded = _decode(response.headers.get("content-encoding", ""), response.iter_raw(), url)
    for piece in decoded:
        size += len(piece)
        if size > max_bytes:
            raise FeedFetchError(url, f"the body is over the {max_bytes}-byte cap")
        if time.monotonic() > deadline:  # a server trickling bytes forever
            raise FeedFetchError(url, "the body took too long to arrive")
        chunks.append(piece)
    return b"".join(chunks)


def _decode(header: str, raw: Iterator[bytes], url: str) -> Iterator[bytes]:
    """The decoded body, undoing each listed Content-Encoding last-applied first, lazily."""
    codings = [c.strip().lower() for c in header.split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    if len(codings) > _MAX_LAYERS:
        raise FeedFetchError(url, f"{len(codings)} stacked Content-Encodings; refused")
    stream: Iterator[bytes] = raw
    for coding in reversed(codings):
        if coding in {"gzip", "x-gzip"}:
            stream = _inflate(stream, zlib.MAX_WBITS | 16)
        elif coding == "deflate":
            stream = _inflate(stream, None)
        else:
            raise FeedFetchError(url, f"unsupported Content-Encoding {coding!r}")
    return stream


def _inflate(compressed: Iterator[bytes], wbits: int | None) -> Iterator[bytes]:
    """Inflate ``compressed`` in pieces of at most ``_PIECE`` bytes.

    ``wbits=None`` is HTTP "deflate", which servers send zlib-wrapped or raw; concatenated
    gzip members are read one after another.
    """
    decoder: zlib._Decompress | None = None
    for chunk in compressed:
        if not chunk:
            continue
        decoder = decoder or _decoder(wbits, chunk)
        data, more = chunk, True
        while more:
            out = decoder.decompress(data, _PIECE)
            if out:
                yield out
            data = decoder.unconsumed_tail
            if decoder.eof and decoder.unused_data:  # the next gzip member
                data, decoder = decoder.unused_data, _decoder(wbits, decoder.unused_data)
            # A full piece may leave output inside the decoder even with no input left.
            more = bool(data) or (len(out) == _PIECE and not decoder.eof)
    if decoder is not None:
        tail = decoder.flush()
        if tail:
            yield tail


def _decoder(wbits: int | None, first: bytes) -> zlib._Decompress:
    if wbits is None:  # a zlib header is two bytes: CM=8 and a multiple of 31
        wrapped = len(first) >= 2 and first[0] & 0x0F == 8 and (first[0] << 8 | first[1]) % 31 == 0
        wbits = zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS
    return zlib.decompressobj(wbits)


def _read_local(url: str, max_bytes: int) -> FetchResult:
    path = local_path(url)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise FeedFetchError(url, f"the file ({size} bytes) is over the {max_bytes}-byte cap")
        content = path.read_bytes()
    except OSError as exc:
        raise FeedFetchError(url, f"cannot read the file: {exc.strerror or exc}") from exc
    return FetchResult(url=url, status=200, content=content, headers={})
