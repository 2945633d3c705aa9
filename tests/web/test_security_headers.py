"""Browser security headers on every page, framing only where docs/embed.html needs it, and
only the host of DIGEST_BASE_URL is answered (no Location built from a stranger's Host)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from digest.bootstrap import build
from digest.readers.ratelimit import RateLimiter
from digest.store import migrate as schema
from digest.web.app import create_app
from tests.conftest import REDIS_TEST_URL, make_settings


def _client(tmp_path, transport, **overrides) -> TestClient:
    app = build(make_settings(tmp_path, **overrides), lambda: transport)
    schema.upgrade(app.engine)
    limiter = RateLimiter(REDIS_TEST_URL, prefix="digest:test-headers")
    base = overrides.get("base_url", "https://news.example.org")
    return TestClient(create_app(app, limiter=limiter), base_url=str(base))


@pytest.fixture
def client(tmp_path, transport) -> TestClient:
    return _client(tmp_path, transport, allowed_hosts=[],
                   cors_origins=["https://blog.example.org"])


def test_every_page_carries_the_security_headers(client) -> None:
    for path in ("/", "/archive", "/confirm/x", "/unsubscribe/x", "/healthz", "/openapi.json",
                 "/preferences/x", "/static/reader/timezone.js"):
        response = client.get(path)
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.headers["referrer-policy"] == "no-referrer", path
        assert response.headers["strict-transport-security"].startswith("max-age="), path
        csp = response.headers["content-security-policy"]
        assert "default-src 'none'" in csp, path
        # Scripts only from this site, only on the pages with the time-zone select; never
        # inline, never eval.
        scripts = "script-src 'self';" in csp
        assert scripts == (path in ("/", "/preferences/x")), path
        assert "unsafe-inline" not in csp.partition("style-src")[0], path
        assert "unsafe-eval" not in csp, path


def test_only_the_signup_page_and_its_answers_may_be_framed_by_the_blog(client) -> None:
    for response in (client.get("/"),
                     client.post("/subscribe", data={"email": "not an address"}),
                     client.post("/subscribe", data={"email": "reader@example.org"})):
        csp = response.headers["content-security-policy"]
        assert "frame-ancestors 'self' https://blog.example.org" in csp
        assert "x-frame-options" not in response.headers
    for path in ("/confirm/x", "/preferences/x", "/archive", "/admin/stats"):
        response = client.get(path)
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"], path
        assert response.headers["x-frame-options"] == "DENY", path


def test_no_hsts_over_plain_http(tmp_path, transport) -> None:
    client = _client(tmp_path, transport, base_url="http://localhost:8000")
    assert "strict-transport-security" not in client.get("/").headers


def test_a_foreign_host_is_refused_and_never_reaches_a_location(client) -> None:
    evil = {"host": "evil.example"}
    assert client.get("/", headers=evil).status_code == 400
    redirect = client.get("/archive/", headers=evil, follow_redirects=False)
    assert redirect.status_code == 400 and "location" not in redirect.headers
    assert client.get("/healthz", headers=evil).status_code == 200  # container probes
    assert client.get("/", headers={"host": "news.example.org:443"}).status_code == 200


def test_extra_hosts_and_loopback_names_are_answered(tmp_path, transport) -> None:
    extra = _client(tmp_path, transport, allowed_hosts=["www.news.example.org"])
    assert extra.get("/", headers={"host": "www.news.example.org"}).status_code == 200
    local = _client(tmp_path, transport, base_url="http://localhost:8000", allowed_hosts=[])
    for host in ("localhost:8000", "127.0.0.1:8000", "[::1]:8000"):
        assert local.get("/", headers={"host": host}).status_code == 200, host
    assert local.get("/", headers={"host": "evil.example"}).status_code == 400
