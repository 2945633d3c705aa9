"""Provider events are counted once each, by kind (a kind SendGrid does not have is "other"),
and bounces and complaints by the readers they suppressed; a replayed event counts nothing.
(A rolled-back transaction counting nothing: tests/web/test_metrics_route.py.)
"""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from tests.delivery_helpers import add_readers
from tests.webhook_signing import signed_headers


def _count(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _snapshot() -> dict[str, float]:
    return {
        "spam": _count("digest_webhook_events_total", kind="spamreport"),
        "bounce": _count("digest_webhook_events_total", kind="bounce"),
        "delivered": _count("digest_webhook_events_total", kind="delivered"),
        "other": _count("digest_webhook_events_total", kind="other"),
        "complaints": _count("digest_complaints_total"),
        "bounces": _count("digest_bounces_total"),
        "unsubscribes": _count("digest_unsubscribes_total", by="provider"),
    }


def test_events_and_suppressions_are_counted_once(app, client: TestClient) -> None:
    add_readers(app, 3)
    before = _snapshot()
    events = [
        {"sg_event_id": "e1", "event": "spamreport", "email": "reader0@example.org"},
        {"sg_event_id": "e2", "event": "bounce", "email": "reader1@example.org", "type": "bounce"},
        {"sg_event_id": "e3", "event": "bounce", "email": "reader1@example.org", "type": "bounce"},
        {"sg_event_id": "e4", "event": "delivered", "email": "reader2@example.org"},
        {"sg_event_id": "e5", "event": "made-up-kind"},
        {"sg_event_id": "e6", "event": "delivered", "edition_id": str(2**64)},
    ]
    body = json.dumps(events).encode()
    assert client.post("/webhooks/sendgrid", content=body,
                       headers=signed_headers(body)).status_code == 200
    replay = json.dumps(events[:2]).encode()  # SendGrid retries: nothing counts again
    assert client.post("/webhooks/sendgrid", content=replay,
                       headers=signed_headers(replay)).status_code == 200
    after = _snapshot()
    moved = {k: after[k] - before[k] for k in before}
    assert moved == {"spam": 1, "bounce": 2, "delivered": 2, "other": 1,
                     "complaints": 1, "bounces": 1, "unsubscribes": 0}
