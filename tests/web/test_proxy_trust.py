"""Behind a trusted proxy the consent IP is the visitor's; a hostile header never 500s."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from digest.store.models import Subscriber
from digest.web.app import create_app


def _consent_ip(app, email):
    with app.sessions() as s:
        return s.scalar(select(Subscriber.consent_ip).where(Subscriber.email == email))


@pytest.mark.parametrize(("forwarded", "stored"), [
    ("198.51.100.7", "198.51.100.7"),
    ("6.6.6.6, 198.51.100.7", "198.51.100.7"),
    ("x" * 20_000, "172.18.0.1"),
    ("1.1.1.1, " * 3000 + "not-an-ip", "172.18.0.1"),
    ("::ffff:198.51.100.8", "198.51.100.8"),
])
def test_consent_ip_behind_a_trusted_proxy(app, forwarded, stored):
    app.settings.trusted_proxies = ["172.16.0.0/12"]
    with TestClient(create_app(app, limiter=None), client=("172.18.0.1", 4711)) as client:
        r = client.post("/subscribe", json={"email": "r@example.org"},
                        headers={"X-Forwarded-For": forwarded})
    assert r.status_code == 200
    assert _consent_ip(app, "r@example.org") == stored


def test_forwarded_for_from_an_untrusted_peer_is_ignored(app):
    with TestClient(create_app(app, limiter=None), client=("203.0.113.9", 4711)) as client:
        r = client.post("/subscribe", json={"email": "r@example.org"},
                        headers={"X-Forwarded-For": "198.51.100.7"})
    assert r.status_code == 200
    assert _consent_ip(app, "r@example.org") == "203.0.113.9"
