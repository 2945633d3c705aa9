"""The console's door: signing in and out, the session cookie and its expiry, CSRF on every
form, and no console page reachable without a session."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import SecretStr

from digest.readers.ratelimit import Limit, RateLimiter
from digest.web.app import create_app
from digest.web.console import ROUTERS
from digest.web.console import session as console_session
from digest.web.console.credentials import hash_password
from tests.conftest import REDIS_TEST_URL
from tests.web.console_client import (
    ADMIN_TOKEN,
    BASE_URL,
    console_app,
    console_limiter,
    csrf_of,
    signed_in_client,
)

# Pages anyone may open: the sign-in form and the files it needs.
PUBLIC = {"/admin/sign-in", "/admin/static/{name}"}


def _client(app, limiter: RateLimiter | None = None) -> TestClient:
    api = create_app(app, limiter=limiter or console_limiter())
    return TestClient(api, base_url=BASE_URL, follow_redirects=False)


def _set_cookie(response) -> SimpleCookie:
    cookie = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):
        cookie.load(header)
    return cookie


def _routes(routes):
    """The app's routes, into included routers (FastAPI nests them)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif (inner := getattr(route, "original_router", None)) is not None:
            yield from _routes(inner.routes)


def _console_routes(api):
    """Every console route of the app (so pages added later are covered too)."""
    for route in _routes(api.routes):
        if (route.endpoint.__module__.startswith("digest.web.console.")
                and route.path not in PUBLIC):
            yield route


def _concrete(path: str) -> str:
    parts = [("1" if p.startswith("{") else p) for p in path.split("/")]
    return "/".join(parts)


def test_the_token_signs_in_with_a_strict_httponly_cookie_for_admin_only(sqlite_app) -> None:
    client = _client(sqlite_app)
    assert client.get("/admin").status_code == 303
    answer = client.post("/admin/sign-in", data={"password": ADMIN_TOKEN, "next": "/admin"})
    assert answer.status_code == 303 and answer.headers["location"] == "/admin"
    morsel = _set_cookie(answer)[console_session.COOKIE]
    assert morsel["httponly"] and morsel["secure"]
    assert morsel["samesite"] == "strict" and morsel["path"] == "/admin"
    assert int(morsel["max-age"]) == 12 * 3600
    page = client.get("/admin")
    assert page.status_code == 200 and "Dashboard" in page.text
    assert page.headers["cache-control"] == "no-store"


def test_an_argon2_password_signs_in_and_a_wrong_one_is_refused(tmp_path, transport) -> None:
    from digest.bootstrap import build
    from digest.store import migrate as schema
    from tests.conftest import make_settings

    hashed = hash_password("correct horse battery staple")
    app = build(make_settings(tmp_path, admin_password=hashed, admin_token=None),
                lambda: transport)
    schema.upgrade(app.engine)
    client = _client(app)
    wrong = client.post("/admin/sign-in", data={"password": "Correct horse battery staple"})
    assert wrong.status_code == 400 and "not right" in wrong.text
    assert console_session.COOKIE not in _set_cookie(wrong)
    assert client.get("/admin").status_code == 303
    right = client.post("/admin/sign-in", data={"password": "correct horse battery staple"})
    assert right.status_code == 303
    assert client.get("/admin").status_code == 200
    # The hash itself is not a password.
    other = _client(app)
    assert other.post("/admin/sign-in", data={"password": hashed}).status_code == 400


def test_a_wrong_password_runs_argon2_like_a_right_one(sqlite_app, monkeypatch) -> None:
    """With only the token set, a wrong guess still costs one argon2 verification."""
    from digest.web.console import credentials

    calls = []
    real = credentials._hasher

    class Counting:
        def verify(self, hashed, given):
            calls.append(given)
            return real.verify(hashed, given)

    monkeypatch.setattr(credentials, "_hasher", Counting())
    client = _client(sqlite_app)
    assert client.post("/admin/sign-in", data={"password": "guess"}).status_code == 400
    assert client.post("/admin/sign-in", data={"password": ADMIN_TOKEN}).status_code == 303
    assert calls == ["guess", ADMIN_TOKEN]


def test_without_password_or_token_the_console_says_so_and_nobody_signs_in(
        tmp_path, transport) -> None:
    from digest.bootstrap import build
    from digest.store import migrate as schema
    from tests.conftest import make_settings

    app = build(make_settings(tmp_path, admin_token=None), lambda: transport)
    schema.upgrade(app.engine)
    client = _client(app)
    form = client.get("/admin/sign-in")
    assert form.status_code == 200 and "The console is off" in form.text
    assert 'name="password"' not in form.text
    for guess in ("", "test-admin-token", "anything"):
        answer = client.post("/admin/sign-in", data={"password": guess})
        assert answer.status_code == 403 and console_session.COOKIE not in _set_cookie(answer)


def test_a_plain_password_in_the_setting_is_refused_at_start(tmp_path) -> None:
    from digest.config import load_settings
    from digest.errors import ConfigError

    with pytest.raises(ConfigError, match=r"DIGEST_ADMIN_PASSWORD: .*argon2 hash"):
        load_settings(_env_file=None, admin_password="hunter2hunter2")


def test_sign_in_attempts_are_rate_limited_per_address(sqlite_app) -> None:
    import uuid

    # A fixed clock in mid-window: the limiter counts per 15-minute window of the wall clock,
    # and attempts straddling a window's end would start counting again.
    limiter = RateLimiter(REDIS_TEST_URL, prefix=f"test:console:{uuid.uuid4().hex}",
                          limits={"sign-in": Limit(3, 900)}, clock=lambda: 900 * 2_000_000 + 450)
    client = _client(sqlite_app, limiter)
    for _ in range(3):
        assert client.post("/admin/sign-in", data={"password": "guess"}).status_code == 400
    blocked = client.post("/admin/sign-in", data={"password": ADMIN_TOKEN})
    assert blocked.status_code == 429 and "Too many sign-in attempts" in blocked.text
    assert int(blocked.headers["retry-after"]) > 0
    assert console_session.COOKIE not in _set_cookie(blocked)
    limiter.close()


def test_the_default_limit_is_ten_attempts_in_fifteen_minutes() -> None:
    from digest.readers.ratelimit import DEFAULT_LIMITS

    assert DEFAULT_LIMITS["sign-in"] == Limit(10, 900)


@pytest.mark.parametrize("target", [
    "https://evil.example/admin", "//evil.example/admin", "/\\evil.example", "\\\\evil.example",
    "/admin/../evil", "/admin/%2e%2e/evil", "/archive", "javascript:alert(1)",
    "/admin\r\nLocation: https://evil.example", "/admin/sign-in",
])
def test_next_never_leaves_the_console(sqlite_app, target) -> None:
    client = _client(sqlite_app)
    answer = client.post("/admin/sign-in", data={"password": ADMIN_TOKEN, "next": target})
    assert answer.status_code == 303 and answer.headers["location"] == "/admin"


def test_next_leads_back_to_the_console_page_asked_for(sqlite_app) -> None:
    client = _client(sqlite_app)
    first = client.get("/admin?cadence=daily&x=1")
    assert first.status_code == 303
    form = client.get(first.headers["location"])
    assert 'value="/admin?cadence=daily&amp;x=1"' in form.text
    answer = client.post("/admin/sign-in", data={"password": ADMIN_TOKEN,
                                                 "next": "/admin/readers?q=ann&status=active"})
    assert answer.headers["location"] == "/admin/readers?q=ann&status=active"


def test_a_cross_site_post_without_the_csrf_token_is_refused(sqlite_app) -> None:
    client, csrf = signed_in_client(sqlite_app)
    cross_site = {"origin": "https://evil.example", "sec-fetch-site": "cross-site"}
    for data in ({}, {"csrf_token": ""}, {"csrf_token": "0" * len(csrf)},
                 {"csrf_token": csrf[:-1]}):
        refused = client.post("/admin/sign-out", data=data, headers=cross_site)
        assert refused.status_code == 403, data
        assert console_session.COOKIE not in _set_cookie(refused)
    assert client.get("/admin").status_code == 200  # still signed in: nothing changed
    # The token in a query string or a JSON body does not count either.
    assert client.post(f"/admin/sign-out?csrf_token={csrf}").status_code == 403
    assert client.post("/admin/sign-out", json={"csrf_token": csrf}).status_code == 403
    assert client.get("/admin").status_code == 200


def test_the_csrf_token_works_in_a_multipart_form(sqlite_app) -> None:
    client, csrf = signed_in_client(sqlite_app)
    answer = client.post("/admin/sign-out", data={"csrf_token": csrf},
                         files={"file": ("a.csv", b"email\n", "text/csv")})
    assert answer.status_code == 303


def test_another_sessions_csrf_token_is_refused(sqlite_app) -> None:
    api = console_app(sqlite_app)
    first, first_csrf = signed_in_client(api)
    _second, second_csrf = signed_in_client(api)
    assert first_csrf != second_csrf
    assert first.post("/admin/sign-out", data={"csrf_token": second_csrf}).status_code == 403
    assert first.get("/admin").status_code == 200


def test_sign_out_clears_the_cookie(sqlite_app) -> None:
    client, csrf = signed_in_client(sqlite_app)
    page = client.get("/admin")
    assert 'action="/admin/sign-out"' in page.text
    answer = client.post("/admin/sign-out", data={"csrf_token": csrf})
    assert answer.status_code == 303 and answer.headers["location"] == "/admin/sign-in"
    morsel = _set_cookie(answer)[console_session.COOKIE]
    assert morsel.value in ("", '""') and morsel["path"] == "/admin"
    assert client.get("/admin").status_code == 303


def _expired_cookie(settings) -> str:
    value, _ = console_session.issue(
        settings, now=datetime.now(UTC) - timedelta(hours=settings.admin_session_hours, minutes=1))
    return value


def test_a_session_cookie_past_its_expiry_is_refused(sqlite_app) -> None:
    client = _client(sqlite_app)
    settings = sqlite_app.settings
    fresh, _ = console_session.issue(settings, now=datetime.now(UTC) - timedelta(hours=11))
    client.cookies.set(console_session.COOKIE, fresh, domain="news.example.org", path="/admin")
    assert client.get("/admin").status_code == 200
    client.cookies.clear()
    # The browser kept it (or it was replayed): the expiry inside the signed value decides.
    client.cookies.set(console_session.COOKIE, _expired_cookie(settings),
                       domain="news.example.org", path="/admin")
    answer = client.get("/admin")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/admin/sign-in?next=")
    assert client.post("/admin/sign-out", data={"csrf_token": "x"}).status_code == 403


def test_a_forged_or_tampered_cookie_is_refused(sqlite_app) -> None:
    from itsdangerous import URLSafeSerializer

    settings = sqlite_app.settings
    far = int((datetime.now(UTC) + timedelta(days=365)).timestamp())
    forged = URLSafeSerializer(b"guessed key", salt="digest.console.session").dumps(
        {"sid": "x", "exp": far, "cred": "0" * 16})
    good, _ = console_session.issue(settings, now=datetime.now(UTC))
    tampered = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    for value in (forged, tampered, "garbage", good.split(".")[0]):
        client = _client(sqlite_app)
        client.cookies.set(console_session.COOKIE, value, domain="news.example.org",
                           path="/admin")
        assert client.get("/admin").status_code == 303, value


def test_a_new_token_ends_every_session(sqlite_app) -> None:
    value, _ = console_session.issue(sqlite_app.settings, now=datetime.now(UTC))
    changed = sqlite_app.settings.model_copy(update={"admin_token": SecretStr("a-new-token")})
    assert console_session.read_session(changed, value, now=datetime.now(UTC)) is None
    assert console_session.read_session(sqlite_app.settings, value,
                                        now=datetime.now(UTC)) is not None


def test_no_console_page_is_reachable_without_signing_in(app) -> None:
    api = console_app(app)
    routes = list(_console_routes(api))
    assert {"/admin", "/admin/sign-out"} <= {r.path for r in routes}
    declared = {(r.path, m) for router in ROUTERS for r in router.routes
                if isinstance(r, APIRoute) and r.path not in PUBLIC for m in r.methods}
    assert declared == {(r.path, m) for r in routes for m in r.methods}
    expired = _expired_cookie(app.settings)
    for cookie in (None, expired):
        client = TestClient(api, base_url=BASE_URL, follow_redirects=False)
        if cookie:
            client.cookies.set(console_session.COOKIE, cookie, domain="news.example.org",
                               path="/admin")
        for route in routes:
            path = _concrete(route.path)
            for method in sorted(route.methods):
                answer = client.request(method, path, data={"csrf_token": "x"}
                                        if method == "POST" else None)
                if method in ("GET", "HEAD"):
                    assert answer.status_code == 303, (method, path)
                    assert answer.headers["location"].startswith("/admin/sign-in?next=%2Fadmin")
                else:
                    assert answer.status_code == 403, (method, path)


def test_console_pages_may_run_this_sites_scripts_and_nothing_else(sqlite_app) -> None:
    client, _ = signed_in_client(sqlite_app)
    for path in ("/admin", "/admin/sign-in"):
        csp = client.get(path).headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
        assert "unsafe-eval" not in csp and "script-src 'self' 'unsafe-inline'" not in csp
    page = client.get("/admin").text
    assert '<script src="/admin/static/htmx.min.js"' in page
    assert "<script>" not in page  # no inline script: the policy would block it
    # The JSON API beside the console and the readers' pages keep the no-script policy (but
    # the sign-up and preferences pages, which load the time-zone script: test_security_headers).
    for path in ("/admin/stats", "/archive", "/admin/nothing-here"):
        csp = client.get(path, headers={"authorization": f"Bearer {ADMIN_TOKEN}"}).headers[
            "content-security-policy"]
        assert "script-src" not in csp, path


def test_the_console_files_are_served_from_the_package(sqlite_app) -> None:
    client = _client(sqlite_app)
    css = client.get("/admin/static/console.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    htmx = client.get("/admin/static/htmx.min.js")
    assert htmx.status_code == 200 and "javascript" in htmx.headers["content-type"]
    assert "htmx" in htmx.text[:200]
    assert "Zero-Clause BSD" in client.get("/admin/static/htmx.LICENSE").text
    for bad in ("../session.py", "..%2Fsession.py", "nothing.js", "%2e%2e"):
        assert client.get(f"/admin/static/{bad}").status_code == 404, bad


def test_the_sign_in_page_has_a_labelled_password_field(sqlite_app) -> None:
    form = _client(sqlite_app).get("/admin/sign-in")
    assert '<label for="password">' in form.text and 'id="password"' in form.text
    assert 'type="password"' in form.text
    assert csrf_of('name="csrf_token" value="abc"') == "abc"


def test_an_htmx_request_without_a_session_is_sent_to_sign_in_as_a_whole_page(sqlite_app) -> None:
    client = _client(sqlite_app)
    answer = client.get("/admin", headers={
        "hx-request": "true", "hx-current-url": "https://news.example.org/admin?cadence=daily"})
    assert answer.status_code == 403 and "location" not in answer.headers
    assert answer.headers["hx-redirect"] == "/admin/sign-in?next=%2Fadmin%3Fcadence%3Ddaily"
    foreign = client.post("/admin/sign-out", headers={
        "hx-request": "true", "hx-current-url": "https://evil.example/phish"})
    assert foreign.status_code == 403
    assert foreign.headers["hx-redirect"] == "/admin/sign-in?next=%2Fadmin"
