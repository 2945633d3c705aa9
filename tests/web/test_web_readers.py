"""The readers' HTTP shell through FastAPI's TestClient, with the real Redis rate limiter."""

from __future__ import annotations

import re
import time
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from digest.readers.addresses import email_hash
from digest.readers.optin import subscribe
from digest.readers.ratelimit import Limit, RateLimiter
from digest.readers.roster import add
from digest.readers.signup import form_stamp
from digest.store.models import Cadence, Subscriber, SubscriberStatus
from digest.tokens import Purpose
from digest.web.app import create_app

CONFIRM = re.compile(r"/confirm/([A-Za-z0-9_.\-]+)")
# A real IP for the peer: "testclient" is no address, and rate limits key on valid IPs only.
PEER = ("203.0.113.9", 50000)


@pytest.fixture
def client(sqlite_app, limiter):
    with TestClient(create_app(sqlite_app, limiter=limiter)) as made:
        yield made


def _count(app):
    with app.sessions() as s:
        return s.scalar(select(func.count()).select_from(Subscriber))


def _row(app, email):
    with app.sessions() as s:
        key = email_hash(email, app.address_key)
        query = select(Subscriber).where(Subscriber.email_hash == key)
        return s.scalars(query).first()


def _token(app, purpose, email):
    row = _row(app, email)
    return app.tokens.make(purpose, row.id, row.link_key)


def _snapshot(app):
    with app.sessions() as s:
        return [(r.id, r.email, r.status, r.cadence, r.paused)
                for r in s.scalars(select(Subscriber).order_by(Subscriber.id))]


def test_signup_page_works_without_javascript(client):
    page = client.get("/")
    assert page.status_code == 200
    html = page.text
    assert '<form method="post" action="/subscribe"' in html
    assert 'name="email"' in html and 'name="website"' in html and 'name="stamp"' in html
    # One script, from a file (it only pre-selects the browser's time zone); nothing inline.
    assert re.findall(r"<script[^>]*>", html) == [
        '<script src="/static/reader/timezone.js" defer>']
    assert '<option value="Europe/Istanbul" selected>' in html  # the operator's zone
    assert client.get("/healthz").json() == {"status": "ok"}


def test_same_answer_for_unknown_pending_active_and_unsubscribed(client, sqlite_app, transport):
    subscribe(sqlite_app, "pending@example.org", ip=None, source="web")
    add(sqlite_app, "active@example.org")
    add(sqlite_app, "gone@example.org")
    from digest.readers.roster import remove
    remove(sqlite_app, "gone@example.org")
    json_answers, form_answers = set(), set()
    for who in ("new", "pending", "active", "gone"):
        r = client.post("/subscribe", json={"email": f"{who}@example.org"})
        json_answers.add((r.status_code, r.text))
        r = client.post("/subscribe", data={"email": f"{who}@example.org"})
        form_answers.add((r.status_code, r.text.replace(f"{who}@example.org", "")))
    assert len(json_answers) == 1 and len(form_answers) == 1
    assert next(iter(json_answers))[0] == 200
    assert _row(sqlite_app, "new@example.org").status is SubscriberStatus.PENDING


def test_honeypot_and_forged_stamps_are_dropped_silently(client, sqlite_app, transport):
    normal = client.post("/subscribe", data={"email": "human@example.org"})
    bot = client.post("/subscribe", data={"email": "bot@example.org", "website": "http://spam"})
    forged = client.post("/subscribe", data={"email": "forged@example.org",
                                             "stamp": "1.0.forged"})
    clean = lambda r, who: r.text.replace(who, "")  # noqa: E731
    assert {(r.status_code, clean(r, w)) for r, w in [
        (normal, "human@example.org"), (bot, "bot@example.org"),
        (forged, "forged@example.org")]} == {(200, clean(normal, "human@example.org"))}
    assert transport.recipients == ["human@example.org"]
    assert _count(sqlite_app) == 1


def test_a_fast_person_is_asked_to_press_again_and_the_second_press_counts(
        client, sqlite_app, transport):
    fast = client.post("/subscribe", data={"email": "fast@example.org",
                                           "stamp": form_stamp(sqlite_app.settings)})
    assert fast.status_code == 200
    assert "Check your inbox" not in fast.text
    assert "press Subscribe again" in fast.text
    assert 'value="fast@example.org"' in fast.text  # the address is kept for the second press
    assert transport.sent == [] and _count(sqlite_app) == 0
    stamp = re.search(r'name="stamp" value="([^"]+)"', fast.text).group(1)
    again = client.post("/subscribe", data={"email": "fast@example.org", "stamp": stamp})
    assert again.status_code == 200 and "Check your inbox" in again.text
    assert transport.recipients == ["fast@example.org"]


def test_a_fast_invalid_address_gets_the_error_not_a_success(client, sqlite_app, transport):
    r = client.post("/subscribe", data={"email": "not-an-address",
                                        "stamp": form_stamp(sqlite_app.settings)})
    assert r.status_code == 422
    assert "Check your inbox" not in r.text
    assert re.search(r"<title>Error: ", r.text)
    assert 'aria-invalid="true" aria-describedby="email-error"' in r.text
    error = re.search(r'id="email-error"[^>]*>([^<]+)<', r.text).group(1)
    assert error[0].isupper() and error.rstrip().endswith(".")
    assert transport.sent == []


def test_check_your_inbox_repeats_the_address_and_says_what_to_expect(client, sqlite_app):
    r = client.post("/subscribe", data={"email": "typed@example.org"})
    assert r.status_code == 200
    text = r.text
    assert "typed@example.org" in text
    assert sqlite_app.settings.from_email in text
    assert "spam" in text
    assert "15 minutes sends no second email" in text
    assert 'href="/archive"' in text and 'href="/"' in text


def test_a_stamp_older_than_the_minimum_fill_time_is_accepted(client, sqlite_app, transport):
    stamp = form_stamp(sqlite_app.settings, time.time() - sqlite_app.settings.min_fill_seconds - 1)
    r = client.post("/subscribe", data={"email": "slow@example.org", "stamp": stamp,
                                        "website": ""})
    assert r.status_code == 200
    assert transport.recipients == ["slow@example.org"]


def test_rate_limit_answers_429_and_creates_nothing(sqlite_app, redis_url, transport):
    limiter = RateLimiter(redis_url, prefix=f"test:{uuid.uuid4().hex}",
                          limits={"ip": Limit(2, 60), "email": Limit(1000, 60)})
    with TestClient(create_app(sqlite_app, limiter=limiter), client=PEER) as client:
        for n in range(2):
            assert client.post("/subscribe", json={"email": f"r{n}@example.org"}).status_code == 200
        r = client.post("/subscribe", json={"email": "late@example.org"})
        assert r.status_code == 429
        assert 1 <= int(r.headers["Retry-After"]) <= 61
        form = client.post("/subscribe", data={"email": "late@example.org"})
        assert form.status_code == 429 and "Retry-After" in form.headers
        assert "try again in 1 minute." in form.text  # minutes, not "61 s"
        assert 'href="/archive"' in form.text
    assert _row(sqlite_app, "late@example.org") is None
    assert _count(sqlite_app) == 2
    limiter.close()


def test_repeating_an_address_never_locks_it_out(sqlite_app, redis_url, transport):
    """No per-address request limit (a stranger could lock a reader out); one mail only."""
    limiter = RateLimiter(redis_url, prefix=f"test:{uuid.uuid4().hex}",
                          limits={"ip": Limit(1000, 60)})
    with TestClient(create_app(sqlite_app, limiter=limiter)) as client:
        codes = [client.post("/subscribe", json={"email": "Same@Example.org"}).status_code
                 for _ in range(8)]
    assert codes == [200] * 8
    assert transport.recipients == ["Same@example.org"]
    limiter.close()


def test_rate_limits_fail_open_when_redis_is_down(sqlite_app, transport, caplog):
    limiter = RateLimiter("redis://127.0.0.1:1/0", prefix="down", timeout=0.2)
    with TestClient(create_app(sqlite_app, limiter=limiter), client=PEER) as client:
        assert client.post("/subscribe", json={"email": "r@example.org"}).status_code == 200
    assert "rate limits are off" in caplog.text
    assert transport.recipients == ["r@example.org"]


@pytest.mark.parametrize("kind, send, status", [
    ("malformed json", dict(content=b'{"email": ',
                            headers={"content-type": "application/json"}), 400),
    ("json list", dict(json=["a@example.org"]), 400),
    ("json without email", dict(json={"mail": "a@example.org"}), 400),
    ("json number", dict(json={"email": 42}), 400),
    ("one megabyte", dict(content=b"email=" + b"a" * (1024 * 1024),
                          headers={"content-type": "application/x-www-form-urlencoded"}), 413),
    ("crlf json", dict(json={"email": "x@example.org\r\nBcc: y@example.org"}), 422),
    ("crlf form", dict(data={"email": "x@example.org\nBcc: y@example.org"}), 422),
    ("invalid", dict(json={"email": "not an address"}), 422),
    ("sql json", dict(json={"email": "'; DROP TABLE subscribers; --"}), 422),
    ("sql form", dict(data={"email": "x@example.org' OR '1'='1"}), 422),
    ("empty", dict(data={"email": ""}), 422),
])
def test_bad_input_gets_a_clear_4xx_and_changes_nothing(client, sqlite_app, transport,
                                                        kind, send, status):
    add(sqlite_app, "existing@example.org")
    before = _snapshot(sqlite_app)
    r = client.post("/subscribe", **send)
    assert r.status_code == status, (kind, r.text)
    assert r.text.strip()
    assert _snapshot(sqlite_app) == before
    assert transport.sent == []


def test_chunked_body_over_the_limit_is_refused(client, sqlite_app):
    def chunks():
        for _ in range(40):
            yield b"a" * 4096
    r = client.post("/subscribe", content=chunks(),
                    headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413
    assert _count(sqlite_app) == 0


def test_invalid_address_on_the_form_shows_the_form_again(client):
    r = client.post("/subscribe", data={"email": "nope"})
    assert r.status_code == 422
    assert 'name="email"' in r.text and "nope" in r.text


def test_confirm_get_changes_nothing_post_confirms(client, sqlite_app, transport):
    client.post("/subscribe", data={"email": "r@example.org"})
    path = "/confirm/" + CONFIRM.search(transport.sent[0][0].text).group(1)
    page = client.get(path)
    assert page.status_code == 200 and f'action="{path}"' in page.text
    assert _row(sqlite_app, "r@example.org").status is SubscriberStatus.PENDING
    done = client.post(path)
    assert done.status_code == 200
    assert _row(sqlite_app, "r@example.org").status is SubscriberStatus.ACTIVE


def test_forged_or_tampered_tokens_change_nothing(client, sqlite_app, transport):
    client.post("/subscribe", data={"email": "r@example.org"})
    token = CONFIRM.search(transport.sent[0][0].text).group(1)
    row = _row(sqlite_app, "r@example.org")
    sub_id = row.id
    unsub = sqlite_app.tokens.make(Purpose.UNSUBSCRIBE, sub_id, row.link_key)
    before = _snapshot(sqlite_app)
    for path in (f"/confirm/{token}x", f"/confirm/{token[:-3]}abc", "/confirm/forged",
                 f"/confirm/{unsub}", f"/unsubscribe/{token}", f"/unsubscribe/{unsub[:-2]}zz",
                 f"/unsubscribe/{sub_id}"):
        r = client.post(path)
        assert r.status_code == 400, path
        assert "not valid" in r.text or "expired" in r.text
    r = client.post(f"/preferences/{unsub}", data={"action": "delete", "sure": "1"})
    assert r.status_code == 400
    assert _snapshot(sqlite_app) == before


def test_one_click_unsubscribe_like_gmail(client, sqlite_app):
    add(sqlite_app, "r@example.org")
    token = _token(sqlite_app, Purpose.UNSUBSCRIBE, "r@example.org")
    assert client.get(f"/unsubscribe/{token}").status_code == 200
    assert _row(sqlite_app, "r@example.org").status is SubscriberStatus.ACTIVE
    client.cookies.clear()
    r = client.post(f"/unsubscribe/{token}", content=b"List-Unsubscribe=One-Click",
                    headers={"content-type": "application/x-www-form-urlencoded"},
                    follow_redirects=False)
    assert r.status_code == 200
    assert "set-cookie" not in r.headers
    assert _row(sqlite_app, "r@example.org").status is SubscriberStatus.UNSUBSCRIBED
    assert client.post(f"/unsubscribe/{token}", content=b"List-Unsubscribe=One-Click",
                       headers={"content-type": "application/x-www-form-urlencoded"}
                       ).status_code == 200


def test_preferences_page_saves_downloads_and_deletes(client, sqlite_app):
    add(sqlite_app, "r@example.org")
    token = _token(sqlite_app, Purpose.PREFERENCES, "r@example.org")
    page = client.get(f"/preferences/{token}")
    assert page.status_code == 200 and "r@example.org" in page.text
    r = client.post(f"/preferences/{token}", data={"action": "save", "cadence": "instant",
                                                     "paused": "1"})
    assert r.status_code == 200 and "Saved" in r.text
    sub = _row(sqlite_app, "r@example.org")
    assert (sub.cadence.value, sub.paused) == ("instant", True)
    assert client.post(f"/preferences/{token}", data={"cadence": "hourly"}).status_code == 422
    data = client.post(f"/preferences/{token}", data={"action": "download"})
    assert data.headers["content-disposition"].startswith("attachment")
    assert data.json()["email"] == "r@example.org"
    gone = client.post(f"/preferences/{token}", data={"action": "delete", "sure": "1"})
    assert gone.status_code == 200
    sub = _row(sqlite_app, "r@example.org")
    assert sub.status is SubscriberStatus.DELETED and sub.email is None
    assert client.get(f"/preferences/{token}").status_code == 400


def test_admin_routes_need_the_bearer_token(client):
    routes = (("POST", "/admin/subscribers/import"), ("GET", "/admin/subscribers/export"))
    bad = ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "test-admin-token"})
    for method, path in routes:
        for headers in bad:
            r = client.request(method, path, headers=headers, content=b"email\na@example.org\n")
            assert r.status_code == 401, (path, headers)


def test_admin_import_and_export(client, sqlite_app):
    auth = {"Authorization": "Bearer test-admin-token", "content-type": "text/csv"}
    body = ("Email Address,First Name,Last Name\n"
            "ada@example.org,Ada,Lovelace\nbad,,\nADA@example.org,,\n")
    r = client.post("/admin/subscribers/import?filename=audience.csv", headers=auth, content=body)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["imported"] == 1
    assert [(s["line"], s["reason"].split(":")[0]) for s in report["skipped"]] == [
        (3, "not a valid email address"), (4, "duplicate of line 2")]
    sub = _row(sqlite_app, "ada@example.org")
    assert (sub.status, sub.name, sub.consent_source) == (
        SubscriberStatus.ACTIVE, "Ada Lovelace", "import:audience.csv")
    out = client.get("/admin/subscribers/export", headers=auth)
    assert out.status_code == 200 and out.headers["content-type"].startswith("text/csv")
    assert "ada@example.org" in out.text and "consent_source" in out.text


def test_cors_allows_only_the_blog(client):
    ok = client.options("/subscribe", headers={"Origin": "https://diplomaticopinion.com",
                                               "Access-Control-Request-Method": "POST"})
    assert ok.headers.get("access-control-allow-origin") == "https://diplomaticopinion.com"
    other = client.options("/subscribe", headers={"Origin": "https://evil.example",
                                                  "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in other.headers


def test_confirming_twice_does_not_promise_a_second_welcome(client, sqlite_app, transport):
    client.post("/subscribe", data={"email": "r@example.org"})
    path = "/confirm/" + CONFIRM.search(transport.sent[0][0].text).group(1)
    first = client.post(path)
    assert "welcome email is on its way" in first.text
    again = client.post(path)
    assert again.status_code == 200
    assert "already confirmed" in again.text and "on its way" not in again.text
    assert len(transport.sent) == 2  # the confirmation and one welcome


def test_delete_me_needs_the_checkbox(client, sqlite_app):
    add(sqlite_app, "r@example.org")
    token = _token(sqlite_app, Purpose.PREFERENCES, "r@example.org")
    r = client.post(f"/preferences/{token}", data={"action": "delete"})
    assert r.status_code == 422 and "Yes, delete everything about me" in r.text
    assert _row(sqlite_app, "r@example.org").status is SubscriberStatus.ACTIVE
    r = client.post(f"/preferences/{token}", data={"action": "delete", "sure": "1"})
    assert r.status_code == 200
    assert _row(sqlite_app, "r@example.org").status is SubscriberStatus.DELETED


def test_a_slow_mail_provider_does_not_stall_other_requests(sqlite_app, limiter):
    """Sign-up sends the confirmation mail; that must not block the event loop."""
    import asyncio
    import threading

    import httpx

    entered = threading.Event()

    class SlowTransport:
        def send_batch(self, mail, recipients):
            entered.set()
            time.sleep(1.5)

        def close(self):
            pass

    sqlite_app.transport_factory = SlowTransport
    api = create_app(sqlite_app, limiter=limiter)

    async def scenario():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api),
                                     base_url="http://testserver") as http:
            started = time.monotonic()
            signup = asyncio.create_task(
                http.post("/subscribe", json={"email": "slow@example.org"}))
            while not entered.is_set() and time.monotonic() - started < 5:
                await asyncio.sleep(0.01)
            health = await http.get("/healthz")
            waited = time.monotonic() - started
            assert (await signup).status_code == 200
            return health.status_code, waited

    status, waited = asyncio.run(scenario())
    assert entered.is_set() and status == 200
    assert waited < 1.0, f"/healthz waited {waited:.1f} s behind a slow mail provider"


def test_openapi_declares_the_admin_bearer_scheme(client):
    spec = client.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert any(s.get("scheme") == "bearer" for s in schemes.values())
    admin_ops = [op for path, item in spec["paths"].items() if path.startswith("/admin/")
                 for op in item.values()]
    assert admin_ops and all(op.get("security") for op in admin_ops)


def _prefs_token(app, email):
    return _token(app, Purpose.PREFERENCES, email)


@pytest.fixture
def any_client(app, limiter):
    """The web app on SQLite and PostgreSQL, for what is stored."""
    with TestClient(create_app(app, limiter=limiter)) as made:
        yield made


def test_an_empty_or_partial_preferences_post_keeps_the_settings(any_client, app):
    add(app, "r@example.org")
    token = _prefs_token(app, "r@example.org")
    any_client.post(f"/preferences/{token}", data={"cadence": "daily", "paused": ["0", "1"]})
    before = _snapshot(app)
    assert before[0][3:] == (Cadence.DAILY, True)
    for body in ({}, {"action": "save"}):
        r = any_client.post(f"/preferences/{token}", data=body)
        assert r.status_code == 200 and "Nothing changed" in r.text
    assert _snapshot(app) == before
    # The page's own form: the hidden "0" says the box was unticked.
    r = any_client.post(f"/preferences/{token}", data={"cadence": "daily", "paused": "0"})
    assert "emails are back on" in r.text
    assert _snapshot(app)[0][3:] == (Cadence.DAILY, False)


def test_preferences_show_the_real_state_and_resubscribe(any_client, app):
    add(app, "r@example.org")
    token = _prefs_token(app, "r@example.org")
    unsub = _token(app, Purpose.UNSUBSCRIBE, "r@example.org")
    any_client.post(f"/unsubscribe/{unsub}")
    page = any_client.get(f"/preferences/{token}").text
    assert "unsubscribed" in page and "Resubscribe" in page
    assert 'value="save"' not in page  # no form that would pretend to save anything
    r = any_client.post(f"/preferences/{token}", data={"action": "resubscribe"})
    assert r.status_code == 200 and "subscribed again" in r.text
    sub = _row(app, "r@example.org")
    assert sub.status is SubscriberStatus.ACTIVE and sub.consent_source == "preferences"
    saved = any_client.post(f"/preferences/{token}", data={"cadence": "instant"})
    assert "every new post" in saved.text


def test_confirm_page_checks_the_link_when_opened_and_offers_a_new_one(
        client, sqlite_app, transport):
    client.post("/subscribe", data={"email": "r@example.org"})
    token = CONFIRM.search(transport.sent[0][0].text).group(1)
    ok = client.get(f"/confirm/{token}")
    assert ok.status_code == 200 and "Yes, subscribe me" in ok.text
    expired_app_tokens = type(sqlite_app.tokens)("test-secret", confirm_max_age_seconds=-1)
    sqlite_app.tokens, real = expired_app_tokens, sqlite_app.tokens
    try:
        expired = client.get(f"/confirm/{token}")
    finally:
        sqlite_app.tokens = real
    for page in (expired, client.get(f"/confirm/{token}x")):
        assert page.status_code == 400
        assert "Yes, subscribe me" not in page.text
        assert "Send me a new link" in page.text and 'action="/subscribe"' in page.text
        assert "<title>Error: " in page.text
    assert _row(sqlite_app, "r@example.org").status is SubscriberStatus.PENDING
    client.post(f"/confirm/{token}")
    again = client.get(f"/confirm/{token}")
    assert "already subscribed" in again.text and "Yes, subscribe me" not in again.text


def test_result_pages_lead_onward(client, sqlite_app, transport):
    client.post("/subscribe", data={"email": "r@example.org"})
    token = CONFIRM.search(transport.sent[0][0].text).group(1)
    done = client.post(f"/confirm/{token}")
    assert "Your first digest comes" in done.text
    unsub = _token(sqlite_app, Purpose.UNSUBSCRIBE, "r@example.org")
    left = client.post(f"/unsubscribe/{unsub}")
    blog = sqlite_app.settings.feed_origin
    for page in (done, left):
        assert f'href="{blog}"' in page.text and 'href="/archive"' in page.text
    assert "Sign up again" in left.text


def test_the_blog_link_is_the_setting_or_the_feeds_site(client, sqlite_app):
    from digest.store.models import Feed
    assert 'href="http://127.0.0.1:1/"' in client.get("/").text  # the feed URL's origin
    with sqlite_app.sessions() as session, session.begin():
        session.add(Feed(url="https://blog.example.org/feed/", configured_url="x",
                         site_url="https://blog.example.org/"))
    assert 'href="https://blog.example.org/"' in client.get("/").text
    sqlite_app.settings.blog_url = "https://elsewhere.example/"
    assert 'href="https://elsewhere.example/"' in client.get("/").text


def test_signup_page_says_how_often_and_links_a_sample(client):
    page = client.get("/").text
    assert "once a week, on Mondays" in page
    assert 'href="/archive"' in page


def test_no_placeholder_postal_address_in_front_of_readers(tmp_path, transport, limiter):
    from digest.bootstrap import build
    from digest.store import migrate as schema
    from tests.conftest import make_settings
    settings = make_settings(tmp_path)
    settings.postal_address = ""
    built = build(settings, lambda: transport)
    schema.upgrade(built.engine)
    with TestClient(create_app(built, limiter=limiter)) as c:
        c.post("/subscribe", data={"email": "r@example.org"})
        assert "not configured" not in c.get("/").text.lower()
    mail = transport.sent[0][0]
    assert "not configured" not in mail.html.lower() + mail.text.lower()
    assert any("DIGEST_POSTAL_ADDRESS" in w for w in
               settings.model_copy(update={"mail_backend": "smtp"}).production_warnings())
    built.engine.dispose()


def test_unknown_pages_are_site_pages_for_browsers_and_json_for_clients(client):
    page = client.get("/no-such-page", headers={"accept": "text/html"})
    assert page.status_code == 404 and "<title>Error: Page not found" in page.text
    assert 'href="/archive"' in page.text
    api = client.get("/no-such-page", headers={"accept": "application/json"})
    assert api.status_code == 404 and api.json() == {"detail": "Not Found"}


def test_reader_mails_say_when_the_link_expires_and_when_the_first_digest_comes(
        client, sqlite_app, transport):
    client.post("/subscribe", data={"email": "r@example.org"})
    confirmation = transport.sent[0][0]
    assert "72 hours" in confirmation.text and "72 hours" in confirmation.html
    token = CONFIRM.search(confirmation.text).group(1)
    client.post(f"/confirm/{token}")
    welcome = transport.sent[1][0]
    assert re.search(r"Your first digest comes \w+day \d+ \w+, around 08:00", welcome.text)
    preheader = re.search(r'class="preheader"[^>]*>([^<]*)<', welcome.html).group(1)
    assert "first digest" in preheader and welcome.subject not in preheader
