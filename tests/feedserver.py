"""A small threaded HTTP server on 127.0.0.1 that serves feeds the way real servers do.

Each path answers with scripted bytes and realistic headers (Content-Type, ETag,
Last-Modified, Content-Length), honours If-None-Match / If-Modified-Since with 304, and can be
told to answer with a status, a redirect, a delay or a gzip body. ``?paged=N`` is its own
route (``/feed/?paged=2``); a page that was not set answers 404, as WordPress does.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
import time
from contextlib import suppress
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

RSS = "application/rss+xml; charset=UTF-8"


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = RSS
    headers: dict[str, str] = field(default_factory=dict)
    location: str | None = None
    delay: float = 0.0
    gzip: bool = False  # compress ``body`` on the fly
    raw_gzip: bytes | None = None  # send these already-compressed bytes as the body
    conditional: bool = True  # send ETag/Last-Modified and answer 304 when they match
    send_etag: bool = True  # False: a server that validates by Last-Modified alone
    last_modified: float = field(default_factory=lambda: time.time() - 3600)

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha1(self.body).hexdigest()[:16] + '"'


@dataclass
class Hit:
    target: str
    headers: dict[str, str]
    status: int


class FeedServer:
    """Start with ``with FeedServer() as server:``; ``server.url("/feed/")`` is its address.

    ``host`` may be another loopback address (127.0.0.2) to stand for a second machine.
    A POST is recorded and answered like a GET (a WebSub hub answers 202 that way).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: list[Hit] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((host, port), _handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> FeedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def base(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, target: str) -> str:
        return self.base + target

    def set(self, target: str, body: bytes | str = b"", **options: object) -> Route:
        """Serve ``body`` at ``target`` (path, or path with ?paged=N) with ``options``."""
        data = body.encode() if isinstance(body, str) else body
        route = Route(body=data, **options)  # type: ignore[arg-type]
        self.routes[target] = route
        return route

    def _route(self, target: str) -> Route | None:
        if target in self.routes:
            return self.routes[target]
        parts = urlsplit(target)
        if "paged" in parse_qs(parts.query):
            return None  # past the last page: 404
        return self.routes.get(parts.path)


def _handler(server: FeedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            # Recorded before the answer is written, so a client never outruns the log.
            self._hit = Hit(self.path, dict(self.headers.items()), 0)
            with server._lock:
                server.hits.append(self._hit)
            self._answer(server._route(self.path))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            self._hit = Hit(self.path, dict(self.headers.items()), 0)
            with server._lock:
                server.hits.append(self._hit)
            self._answer(server._route(self.path))

        def _answer(self, route: Route | None) -> int:
            if route is None:
                return self._send(404, b"not found", {"Content-Type": "text/plain"})
            if route.delay:
                time.sleep(route.delay)
            headers = {"Content-Type": route.content_type, **route.headers}
            if route.location is not None:
                headers["Location"] = route.location
                return self._send(route.status, b"", headers)
            if route.conditional and route.status == 200:
                headers["Last-Modified"] = formatdate(route.last_modified, usegmt=True)
                if route.send_etag:
                    headers["ETag"] = route.etag
                    if self.headers.get("If-None-Match") == route.etag:
                        return self._send(304, b"", {"ETag": route.etag})
                elif self._not_modified_since(route.last_modified):
                    return self._send(304, b"", {})
            body = route.body
            if route.raw_gzip is not None:
                body = route.raw_gzip
                headers["Content-Encoding"] = "gzip"
            elif route.gzip:
                body = gzip.compress(body)
                headers["Content-Encoding"] = "gzip"
            return self._send(route.status, body, headers)

        def _not_modified_since(self, last_modified: float) -> bool:
            since = self.headers.get("If-Modified-Since")
            if not since:
                return False
            try:
                return parsedate_to_datetime(since).timestamp() >= int(last_modified)
            except (TypeError, ValueError):
                return False

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> int:
            self._hit.status = status
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if status != 304:
                with suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)
            return status

    return Handler


@dataclass
class Item:
    """One post of a generated WordPress-style feed."""

    post_id: int
    title: str
    published: float  # epoch seconds
    content: str = "<p>Some words of the post.</p>"
    guid: bool = True
    date: bool = True

    @property
    def link(self) -> str:
        return f"https://blog.example.org/{self.post_id}/{self.title.lower().replace(' ', '-')}/"


def wordpress_feed(items: list[Item], *, self_url: str = "https://blog.example.org/feed/") -> bytes:
    """An RSS 2.0 document shaped like WordPress's /feed/ (generator, guid ?p=ID, hub)."""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:atom="http://www.w3.org/2005/Atom" xmlns:dc="http://purl.org/dc/elements/1.1/">',
        "<channel><title>Example Blog</title><link>https://blog.example.org</link>",
        f'<atom:link href="{self_url}" rel="self" type="application/rss+xml" />',
        '<atom:link rel="hub" href="https://blog.example.org/?pushpress=hub"/>',
        "<generator>https://wordpress.org/?v=6.4</generator>",
    ]
    for item in items:
        parts.append("<item>")
        parts.append(f"<title>{item.title}</title><link>{item.link}</link>")
        if item.date:
            parts.append(f"<pubDate>{formatdate(item.published, usegmt=True)}</pubDate>")
        if item.guid:
            parts.append(
                f'<guid isPermaLink="false">http://blog.example.org/?p={item.post_id}</guid>'
            )
        parts.append(f"<content:encoded><![CDATA[{item.content}]]></content:encoded>")
        parts.append("</item>")
    parts.append("</channel></rss>")
    return "\n".join(parts).encode()
