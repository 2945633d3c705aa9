"""HTTP hardening: answer only for our own host name, and send the browser security headers.

``HostCheck`` refuses (400) a request whose ``Host`` is not the host of DIGEST_BASE_URL or one
of DIGEST_ALLOWED_HOSTS, so nothing the app builds from the request URL (the trailing-slash
redirect's ``Location``, absolute links) can point at a name an attacker chose. Liveness and
readiness probes are exempt: a container health check asks ``http://127.0.0.1:8000/healthz``.

``SecurityHeaders`` adds a Content-Security-Policy (no scripts; styles and images as the pages
and the archived digests need; the sign-up and preferences pages may load scripts from this
site, for the one file that pre-selects the reader's time zone, never inline script; the
policy names the site, not the file, so the console's htmx would load there too, but no
reader page includes it and every value in them is escaped),
``nosniff``, ``Referrer-Policy: no-referrer`` (reader tokens live in paths), HSTS when BASE_URL
is https, and framing rules: the sign-up page and the answers of ``/subscribe`` may be framed
by DIGEST_CORS_ORIGINS (docs/embed.html), every other page by nobody. The operator's console
(the routes of ``digest.web.console``, under /admin; not the JSON API beside them) may also run
scripts from this site (the vendored htmx, no inline script, no eval) and fetch from it;
nothing frames it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digest.config import Settings

__all__ = ["CONSOLE_PACKAGE", "EMBEDDABLE_PATHS", "HostCheck", "SecurityHeaders",
           "allowed_hosts", "console_headers", "is_console", "runs_scripts", "security_headers",
           "with_scripts"]

EMBEDDABLE_PATHS = frozenset({"/", "/subscribe"})
# Readers' pages that load /static/reader/timezone.js (the answers of /subscribe show the
# form again after an error).
SCRIPT_PATHS = frozenset({"/", "/subscribe"})
SCRIPT_PREFIXES = ("/preferences/",)
CONSOLE_PACKAGE = "digest.web.console"
PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
HSTS = "max-age=31536000"  # a year; subdomains are the operator's to decide, not ours
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
_SOURCE = re.compile(r"^(\*|'self'|https?://[A-Za-z0-9.\-\[\]:*]+)$")


def _host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def allowed_hosts(settings: Settings) -> frozenset[str]:
    """BASE_URL's host plus ALLOWED_HOSTS; a loopback BASE_URL accepts every loopback name."""
    hosts = {_host_of(settings.base_url)} | {h.strip().lower() for h in settings.allowed_hosts}
    if hosts & _LOOPBACK:
        hosts |= _LOOPBACK
    return frozenset(h for h in hosts if h)


def _request_host(scope: Scope) -> str:
    """The Host header's name, without its port (IPv6 literals keep their address)."""
    headers: dict[bytes, bytes] = dict(scope["headers"])
    raw = headers.get(b"host", b"").decode("latin-1").strip().lower()
    if raw.startswith("["):
        return raw[1:].partition("]")[0]
    return raw.rpartition(":")[0] if raw.count(":") == 1 else raw


class HostCheck:
    """ASGI middleware: 400 for a Host that is not ours (probes excepted)."""

    def __init__(self, app: ASGIApp, hosts: Iterable[str]) -> None:
        self.app = app
        self.hosts = frozenset(hosts)
        self.any = "*" in self.hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or self.any or scope["path"] in PROBE_PATHS
                or _request_host(scope) in self.hosts):
            await self.app(scope, receive, send)
            return
        response = PlainTextResponse(
            "Unknown host name: this service answers only for the host of DIGEST_BASE_URL "
            "(add others to DIGEST_ALLOWED_HOSTS).", status_code=400)
        await response(scope, receive, send)


def _frame_sources(origins: Iterable[str]) -> str:
    """'self' plus the configured embed origins, keeping only valid CSP source expressions."""
    sources = ["'self'"]
    for origin in origins:
        origin = origin.strip().rstrip("/")
        if _SOURCE.match(origin) and origin not in sources:
            sources.append(origin)
    return " ".join(sources)


def security_headers(settings: Settings) -> tuple[dict[str, str], dict[str, str]]:
    """(headers for embeddable pages, headers for every other response)."""
    policy = ("default-src 'none'; style-src 'self' 'unsafe-inline'; "
              "img-src 'self' https: data:; form-action 'self'; base-uri 'none'")
    common = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
    if settings.base_url.lower().startswith("https://"):
        common["Strict-Transport-Security"] = HSTS
    embeddable = {**common, "Content-Security-Policy":
                  f"{policy}; frame-ancestors {_frame_sources(settings.cors_origins)}"}
    other = {**common, "Content-Security-Policy": f"{policy}; frame-ancestors 'none'",
             "X-Frame-Options": "DENY"}
    return embeddable, other


def with_scripts(headers: dict[str, str]) -> dict[str, str]:
    """``headers`` whose policy also lets the page load scripts from this site (no inline)."""
    policy = headers["Content-Security-Policy"].replace(
        "default-src 'none';", "default-src 'none'; script-src 'self';", 1)
    return {**headers, "Content-Security-Policy": policy}


def runs_scripts(path: str) -> bool:
    """Whether a reader's page at ``path`` loads the readers' script."""
    return path in SCRIPT_PATHS or path.startswith(SCRIPT_PREFIXES)


def console_headers(settings: Settings) -> dict[str, str]:
    """The headers of a console page: as strict as any other, plus scripts and fetches from
    this site only (htmx), and never framed."""
    _, other = security_headers(settings)
    policy = ("default-src 'none'; script-src 'self'; connect-src 'self'; "
              "style-src 'self' 'unsafe-inline'; img-src 'self' https: data:; "
              "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
    return {**other, "Content-Security-Policy": policy}


def is_console(scope: Scope) -> bool:
    """Whether the route that answered is a console page (known once the router has matched:
    it records the endpoint in the scope)."""
    endpoint = scope.get("endpoint")
    module = getattr(endpoint, "__module__", "") or ""
    path: str = scope["path"]
    return (path == "/admin" or path.startswith("/admin/")) and module.startswith(
        CONSOLE_PACKAGE + ".")


class SecurityHeaders:
    """ASGI middleware: adds the headers of ``security_headers`` unless a route set its own."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.embeddable, self.other = security_headers(settings)
        self.console = console_headers(settings)
        self.scripted = {True: with_scripts(self.embeddable), False: with_scripts(self.other)}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        embeddable = scope["path"] in EMBEDDABLE_PATHS
        if runs_scripts(scope["path"]):
            extra = self.scripted[embeddable]
        else:
            extra = self.embeddable if embeddable else self.other

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                chosen = self.console if is_console(scope) else extra
                for name, value in chosen.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
