"""A worker dies after SendGrid accepted its request: the provider's own events settle the batch.

Two real Celery workers, on the local Redis and again on the local RabbitMQ, send through the
SendGrid-compatible sink, which, like SendGrid, reports each accepted message as a signed
"processed" event (ECDSA P-256 over timestamp + raw body) posted to ``/webhooks/sendgrid`` of
the web app under uvicorn. The sink accepts one request and never answers it; the worker holding
it is SIGKILLed and the broker's queue is purged (RabbitMQ hands the dead worker's
unacknowledged message back at once, Redis only after its visibility timeout: either way the
ledger claim keeps it from going out again). Reconcile marks that batch in doubt, waits
``DIGEST_IN_DOUBT_MINUTES`` (here 0.2, 12 seconds) for the events, then re-sends it only to
readers with no record: every reader gets the digest exactly once.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

from digest.bootstrap import build
from digest.delivery.dispatch import CeleryDispatch
from digest.delivery.reconcile import reconcile
from digest.delivery.send import send_digest
from digest.runtime import App
from digest.store.models import Edition, EditionStatus
from digest.tasks import make_celery
from digest.web.app import create_app
from tests.conftest import clean_pg_app, make_settings, purge_broker, worker_pool
from tests.delivery_helpers import add_post, add_readers
from tests.sendgrid_sink import (
    celery_workers,
    pid_with_local_port,
    running_sink,
    wait_for,
    worker_env,
)
from tests.webhook_signing import PUBLIC, signed_headers

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(120)]
READERS = 2000
STALE = 3
IN_DOUBT_MINUTES = 0.2  # 12 s: the events arrive within a few, and the test stays short

@pytest.fixture
def pg_app(pg_database: str, broker: dict[str, str], tmp_path: Path) -> Iterator[App]:
    settings = make_settings(tmp_path, database_url=pg_database, **broker,
                             batch_size=100, batch_stale_seconds=STALE,
                             mail_backend="sendgrid", sendgrid_api_key="test",
                             sendgrid_host="http://127.0.0.1:9",
                             sendgrid_webhook_public_key=PUBLIC,
                             in_doubt_minutes=IN_DOUBT_MINUTES)
    app = clean_pg_app(settings)
    purge_broker(app.settings)
    yield app
    app.engine.dispose()


@contextmanager
def running_web(app: App) -> Iterator[str]:
    """The web app under uvicorn on a free 127.0.0.1 port, in a thread."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(create_app(app), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        assert wait_for(lambda: server.started or not thread.is_alive(), 15)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


class EventWebhook:
    """Posts a signed "processed" event per accepted personalization, as SendGrid does:
    afterwards, from elsewhere, one POST per accepted request."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.pending: queue.Queue[list[dict[str, object]] | None] = queue.Queue()
        self.posted = 0
        self.errors: list[str] = []
        self.ids = itertools.count(1)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def accepted(self, personalizations: list[dict[str, object]]) -> None:
        self.pending.put(personalizations)

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while (personalizations := self.pending.get()) is not None:
                body = json.dumps([self._event(p) for p in personalizations]).encode()
                response = client.post(f"{self.url}/webhooks/sendgrid", content=body,
                                       headers=signed_headers(body))
                if response.status_code != 200:
                    self.errors.append(f"{response.status_code} {response.text[:200]}")
                self.posted += len(personalizations)

    def _event(self, personalization: dict[str, object]) -> dict[str, object]:
        n = next(self.ids)
        to = personalization["to"][0]  # type: ignore[index]
        return {"email": to["email"], "event": "processed", "timestamp": int(time.time()),
                "sg_event_id": f"processed-{n}", "sg_message_id": f"msg-{n}.filter0001",
                **personalization["custom_args"]}  # type: ignore[dict-item]

    def close(self) -> None:
        self.pending.put(None)
        self.thread.join(30)


def _env(app: App, sink_url: str) -> dict[str, str]:
    s = app.settings
    return worker_env(s.database_url, s.broker_url, sink_url, DIGEST_REDIS_URL=s.rate_limit_url,
                      DIGEST_BATCH_SIZE="100",
                      DIGEST_BATCH_STALE_SECONDS=str(STALE), DIGEST_MAX_SEND_ATTEMPTS="30",
                      DIGEST_SENDGRID_WEBHOOK_PUBLIC_KEY=PUBLIC,
                      DIGEST_IN_DOUBT_MINUTES=str(IN_DOUBT_MINUTES))


def test_accepted_request_of_a_killed_worker_is_not_sent_again(
        pg_app: App, tmp_path: Path) -> None:
    add_post(pg_app)
    add_readers(pg_app, READERS)
    dispatch = CeleryDispatch(send_task=make_celery(pg_app.settings).send_task)
    in_doubt: set[str] = set()
    started = time.monotonic()
    with running_web(build(pg_app.settings)) as web, running_sink() as sink, \
            celery_workers(2, _env(pg_app, sink.url), tmp_path,
                           worker_pool(pg_app.settings)) as procs:
        events = EventWebhook(web)
        sink.on_accept = events.accepted
        sink.hold_at, sink.accept_held = 5, True  # accepted, reported, never answered
        result = send_digest(pg_app, queue=True, dispatch=dispatch)
        assert (result.status, result.batches) == ("queued", READERS // 100)
        assert sink.held.wait(60), "no worker sent anything"
        pid = pid_with_local_port([p.pid for p in procs], sink.held_port)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        next(p for p in procs if p.pid == pid).wait(10)
        sink.release.set()
        purge_broker(pg_app.settings)  # the queued batches are gone

        def done() -> bool:
            in_doubt.update(reconcile(pg_app, dispatch=dispatch).in_doubt)
            with pg_app.sessions() as s:
                return s.get(Edition, result.edition_id).status is not EditionStatus.SENDING

        assert wait_for(done, 60, interval=1.0), "the edition did not finish in time"
        events.close()
    elapsed = time.monotonic() - started
    with pg_app.sessions() as s:
        assert s.get(Edition, result.edition_id).status is EditionStatus.SENT
    duplicates = sum(n - 1 for n in sink.received.values())
    missing = READERS - len(sink.received)
    print(f"\n{READERS} readers in {elapsed:.1f} s: {duplicates} duplicates, {missing} missing, "
          f"{len(in_doubt)} batch in doubt, {events.posted} processed events posted")
    assert events.errors == []
    assert len(in_doubt) == 1, "the killed worker's batch was never in doubt"
    assert (duplicates, missing) == (0, 0)
