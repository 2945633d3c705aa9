"""WebSub: subscribe at the hub, answer its verification, accept only signed pushes."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import parse_qs

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from digest.errors import FeedFetchError
from digest.feeds import poll as polling
from digest.feeds.websub import subscribe_websub
from digest.runtime import App
from digest.store.models import Feed, Post
from digest.store.sessions import transaction
from digest.web.websub import router
from tests.feedserver import Item, wordpress_feed

TOPIC = "https://blog.example.org/feed/"
HUB = "https://blog.example.org/?pushpress=hub"


def _feed(app: App) -> int:
    with transaction(app.sessions) as session:
        feed = Feed(url=TOPIC, configured_url=TOPIC, hub_url=HUB, topic_url=TOPIC)
        session.add(feed)
        session.flush()
        return feed.id


def _subscribe(app: App, feed_id: int, status: int = 202) -> dict[str, list[str]]:
    sent: dict[str, list[str]] = {}

    def hub(request: httpx.Request) -> httpx.Response:
        sent.update(parse_qs(request.content.decode()))
        return httpx.Response(status)

    with httpx.Client(transport=httpx.MockTransport(hub)) as client:
        subscribe_websub(app, feed_id, client=client)
    return sent


@pytest.fixture
def web(sqlite_app: App) -> TestClient:
    api = FastAPI()
    api.state.digest = sqlite_app
    api.include_router(router)
    return TestClient(api)


def test_subscribe_posts_to_the_hub_with_a_callback_and_secret(sqlite_app: App) -> None:
    feed_id = _feed(sqlite_app)
    sent = _subscribe(sqlite_app, feed_id)
    assert sent["hub.mode"] == ["subscribe"] and sent["hub.topic"] == [TOPIC]
    assert sent["hub.callback"] == [f"https://news.example.org/websub/{feed_id}"]
    assert len(sent["hub.secret"][0]) == 64


def test_a_hub_that_refuses_is_a_fetch_error(sqlite_app: App) -> None:
    with pytest.raises(FeedFetchError, match="refused"):
        _subscribe(sqlite_app, _feed(sqlite_app), status=400)


def test_verification_echoes_the_challenge_only_when_we_asked(
    sqlite_app: App, web: TestClient
) -> None:
    feed_id = _feed(sqlite_app)
    params = {"hub.mode": "subscribe", "hub.topic": TOPIC, "hub.challenge": "c-123",
              "hub.lease_seconds": "3600"}
    assert web.get(f"/websub/{feed_id}", params=params).status_code == 404  # not asked yet
    _subscribe(sqlite_app, feed_id)
    answer = web.get(f"/websub/{feed_id}", params=params)
    assert answer.status_code == 200 and answer.text == "c-123"
    wrong = web.get(f"/websub/{feed_id}", params={**params, "hub.topic": "https://evil/"})
    assert wrong.status_code == 404
    with sqlite_app.sessions() as session:
        assert session.get_one(Feed, feed_id).websub_lease_until is not None


def test_only_signed_pushes_are_stored(sqlite_app: App, web: TestClient) -> None:
    feed_id = _feed(sqlite_app)
    secret = _subscribe(sqlite_app, feed_id)["hub.secret"][0]
    published = datetime(2026, 3, 1, tzinfo=UTC).timestamp()
    body = wordpress_feed([Item(42, "Pushed post", published)])
    headers = {"Content-Type": "application/rss+xml"}

    forged = web.post(f"/websub/{feed_id}", content=body,
                      headers={**headers, "X-Hub-Signature": "sha256=" + "0" * 64})
    assert forged.status_code == 202  # acknowledged, as the spec asks, but ignored
    unsigned = web.post(f"/websub/{feed_id}", content=body, headers=headers)
    assert unsigned.status_code == 202
    with sqlite_app.sessions() as session:
        assert session.scalars(select(Post)).all() == []

    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    signed = web.post(f"/websub/{feed_id}", content=body,
                      headers={**headers, "X-Hub-Signature": f"sha256={signature}"})
    assert signed.status_code == 202
    with sqlite_app.sessions() as session:
        (post,) = session.scalars(select(Post)).all()
    assert post.title == "Pushed post" and post.identity == "http://blog.example.org/?p=42"


def test_renewal_asks_the_hub_only_for_missing_or_expiring_leases(sqlite_app: App) -> None:
    from datetime import timedelta

    from digest.feeds.websub import renew_due

    now = datetime(2026, 11, 27, 12, tzinfo=UTC)
    fresh = _feed(sqlite_app)
    with transaction(sqlite_app.sessions) as session:
        session.get_one(Feed, fresh).websub_lease_until = now + timedelta(days=5)
        for days, name in ((0.5, "expiring"), (None, "missing")):
            feed = Feed(url=f"{TOPIC}{name}", configured_url=TOPIC, hub_url=HUB,
                        websub_lease_until=None if days is None else now + timedelta(days=days))
            session.add(feed)
        session.add(Feed(url=f"{TOPIC}nohub", configured_url=TOPIC))
    asked: list[str] = []

    def hub(request: httpx.Request) -> httpx.Response:
        asked.append(parse_qs(request.content.decode())["hub.topic"][0])
        return httpx.Response(202)

    with httpx.Client(transport=httpx.MockTransport(hub)) as client:
        assert len(renew_due(sqlite_app, now=now, client=client)) == 2
    assert sorted(asked) == [f"{TOPIC}expiring", f"{TOPIC}missing"]


def test_no_renewal_without_a_public_https_address(sqlite_app: App, tmp_path) -> None:
    import dataclasses

    from digest.feeds.websub import renew_due

    _feed(sqlite_app)
    local = dataclasses.replace(
        sqlite_app, settings=sqlite_app.settings.model_copy(update={"base_url":
                                                                    "http://localhost:8000"}))

    def hub(request: httpx.Request) -> httpx.Response:
        raise AssertionError("a hub cannot call back a development address")

    with httpx.Client(transport=httpx.MockTransport(hub)) as client:
        assert renew_due(local, client=client) == []


def test_a_full_content_push_over_64_kb_is_accepted(sqlite_app: App) -> None:
    from digest.web.app import create_app

    feed_id = _feed(sqlite_app)
    _subscribe(sqlite_app, feed_id)
    client = TestClient(create_app(sqlite_app, limiter=None))
    body = b"<rss>" + b" " * 70_000 + b"</rss>"
    response = client.post(f"/websub/{feed_id}", content=body,
                           headers={"Content-Type": "application/rss+xml"})
    assert response.status_code == 202


def test_renewal_keeps_the_secret_so_pushes_in_flight_stay_valid(sqlite_app: App) -> None:
    feed_id = _feed(sqlite_app)
    first = _subscribe(sqlite_app, feed_id)["hub.secret"]
    again = _subscribe(sqlite_app, feed_id)["hub.secret"]
    assert first == again


def _verify(web: TestClient, feed_id: int | str, **overrides: str) -> httpx.Response:
    params = {"hub.mode": "subscribe", "hub.topic": TOPIC, "hub.challenge": "c-9",
              "hub.lease_seconds": "864000", **overrides}
    return web.get(f"/websub/{feed_id}", params=params)


def _lease_until(app: App, feed_id: int) -> datetime | None:
    with app.sessions() as session:
        return session.get_one(Feed, feed_id).websub_lease_until


def test_a_challenge_is_answered_once_per_request_we_made(
    sqlite_app: App, web: TestClient
) -> None:
    """After the hub verified our request, nobody can re-verify it to move the lease."""
    feed_id = _feed(sqlite_app)
    _subscribe(sqlite_app, feed_id)
    assert _verify(web, feed_id).status_code == 200
    lease = _lease_until(sqlite_app, feed_id)
    replay = _verify(web, feed_id, **{"hub.lease_seconds": "315360000"})
    assert replay.status_code == 404 and _lease_until(sqlite_app, feed_id) == lease


def test_a_challenge_must_match_the_mode_we_asked_for(sqlite_app: App, web: TestClient) -> None:
    feed_id = _feed(sqlite_app)
    _subscribe(sqlite_app, feed_id)
    assert _verify(web, feed_id, **{"hub.mode": "unsubscribe"}).status_code == 404
    assert _verify(web, feed_id, **{"hub.mode": "other"}).status_code == 404
    assert _verify(web, feed_id).status_code == 200


def test_a_request_left_unverified_for_days_is_no_longer_pending(
    sqlite_app: App, web: TestClient
) -> None:
    from datetime import timedelta

    from digest.feeds.websub import verify_intent

    feed_id = _feed(sqlite_app)
    _subscribe(sqlite_app, feed_id)
    later = datetime.now(UTC) + timedelta(days=3)
    assert verify_intent(sqlite_app, feed_id, mode="subscribe", topic=TOPIC, challenge="c",
                         lease_seconds="3600", now=later) is None


@pytest.mark.parametrize("lease", ["315360000", "9" * 30, "9" * 5000, "-5", "0", "abc", ""])
def test_the_lease_is_capped_and_absurd_values_never_fail(
    sqlite_app: App, web: TestClient, lease: str
) -> None:
    """Anyone pushing the lease to 2036 would stop renewals; a huge number was a 500."""
    feed_id = _feed(sqlite_app)
    _subscribe(sqlite_app, feed_id)
    before = datetime.now(UTC)
    answer = _verify(web, feed_id, **{"hub.lease_seconds": lease})
    assert answer.status_code == 200 and answer.text == "c-9"
    until = _lease_until(sqlite_app, feed_id)
    assert until is not None and (until - before).days <= 10


@pytest.mark.parametrize("feed_id", [str(2**63), str(2**64 + 1), "9" * 40, "-1", "0"])
def test_ids_beyond_the_database_range_are_a_client_error(
    app: App, feed_id: str
) -> None:
    api = FastAPI()
    api.state.digest = app
    api.include_router(router)
    web = TestClient(api, raise_server_exceptions=False)
    assert 400 <= _verify(web, feed_id).status_code < 500
    pushed = web.post(f"/websub/{feed_id}", content=b"<rss/>",
                      headers={"X-Hub-Signature": "sha256=00"})
    assert 400 <= pushed.status_code < 500


def test_a_push_over_the_feed_size_cap_is_refused_while_it_streams(
    sqlite_app: App, web: TestClient
) -> None:
    feed_id = _feed(sqlite_app)
    _subscribe(sqlite_app, feed_id)
    sqlite_app.settings.fetch_max_bytes = 10_000

    def body() -> Iterator[bytes]:
        for _ in range(1000):  # 1 MB offered, 100 times the cap, without a Content-Length
            yield b" " * 1000

    answer = web.post(f"/websub/{feed_id}", content=body())
    assert answer.status_code == 413
    assert web.post(f"/websub/{feed_id}", content=b"<rss/>").status_code == 202


def test_a_push_the_database_refuses_is_acknowledged_not_a_500(
    sqlite_app: App, web: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import DataError


    def refusing(*args: object, **kwargs: object) -> None:
        raise DataError("INSERT ...", {}, Exception("value too long"))

    monkeypatch.setattr(polling, "store_entries", refusing)
    feed_id = _feed(sqlite_app)
    secret = _subscribe(sqlite_app, feed_id)["hub.secret"][0]
    body = wordpress_feed([Item(7, "Refused", datetime(2026, 3, 1, tzinfo=UTC).timestamp())])
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    answer = web.post(f"/websub/{feed_id}", content=body,
                      headers={"X-Hub-Signature": f"sha256={signature}"})
    assert answer.status_code == 202
