"""`GET /metrics`: only for a bearer of the metrics token (else the admin token), and the
counts it shows move when readers sign up, confirm and leave, and only once committed."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from digest.bootstrap import build
from digest.mail.transports.memory import MemoryTransport
from digest.metrics import SIGNUPS, on_commit
from digest.readers import optin, preferences
from digest.readers.ratelimit import RateLimiter
from digest.runtime import App
from digest.store import migrate as schema
from digest.store.models import Subscriber
from digest.store.sessions import transaction
from digest.tokens import Purpose
from digest.web.app import create_app
from tests.conftest import make_settings

pytestmark = pytest.mark.redis


def _client(tmp_path: Path, limiter: RateLimiter, **settings: object) -> TestClient:
    app = build(make_settings(tmp_path, **settings), lambda: MemoryTransport())
    schema.upgrade(app.engine)
    return TestClient(create_app(app, limiter=limiter))


@pytest.mark.parametrize("settings, token", [
    ({"metrics_token": "scrape-me"}, "scrape-me"),
    ({}, "test-admin-token"),  # no metrics token: the admin token opens it
])
def test_only_the_token_opens_metrics(tmp_path: Path, limiter: RateLimiter,
                                      settings: dict, token: str) -> None:
    with _client(tmp_path, limiter, **settings) as client:
        missing = client.get("/metrics")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 403
        if settings:  # with its own token, the admin token does not open /metrics
            assert client.get("/metrics", headers={
                "Authorization": "Bearer test-admin-token"}).status_code == 403
        answer = client.get("/metrics", headers={"Authorization": f"Bearer {token}",
                                                 "Host": "web:8000"})  # any Host, as probes
    assert answer.status_code == 200
    names = {f.name for f in text_string_to_metric_families(answer.text)}
    assert {"digest_batches", "digest_signups", "digest_readers",
            "digest_last_successful_poll_age_seconds"} <= names


def test_no_token_at_all_turns_metrics_off(tmp_path: Path, limiter: RateLimiter) -> None:
    with _client(tmp_path, limiter, admin_token=None) as client:
        assert client.get("/metrics").status_code == 404
        assert client.get("/metrics", headers={"Authorization": "Bearer x"}).status_code == 404


def _count(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_reader_transitions_are_counted(sqlite_app: App) -> None:
    before = {n: _count(n) for n in ("digest_signups_total", "digest_confirmations_total")}
    left = _count("digest_unsubscribes_total", by="reader")
    optin.subscribe(sqlite_app, "ada@example.org", ip=None, source="web")
    optin.subscribe(sqlite_app, "ada@example.org", ip=None, source="web")  # resend: no sign-up
    with sqlite_app.sessions() as s:
        sub = s.query(Subscriber).one()
    make = sqlite_app.tokens.make
    optin.confirm(sqlite_app, make(Purpose.CONFIRM, sub.id, sub.link_key), welcome=lambda _: None)
    optin.confirm(sqlite_app, make(Purpose.CONFIRM, sub.id, sub.link_key), welcome=lambda _: None)
    preferences.unsubscribe(sqlite_app, make(Purpose.UNSUBSCRIBE, sub.id, sub.link_key))
    preferences.unsubscribe(sqlite_app, make(Purpose.UNSUBSCRIBE, sub.id, sub.link_key))
    assert _count("digest_signups_total") == before["digest_signups_total"] + 1
    assert _count("digest_confirmations_total") == before["digest_confirmations_total"] + 1
    assert _count("digest_unsubscribes_total", by="reader") == left + 1


def test_a_rolled_back_change_is_not_counted(sqlite_app: App) -> None:
    before = _count("digest_signups_total")
    with pytest.raises(RuntimeError), transaction(sqlite_app.sessions) as session:
        on_commit(session, SIGNUPS)
        raise RuntimeError("the sign-up fails")
    assert _count("digest_signups_total") == before
    with transaction(sqlite_app.sessions) as session:
        on_commit(session, SIGNUPS)
        assert _count("digest_signups_total") == before  # not before the commit
    assert _count("digest_signups_total") == before + 1
