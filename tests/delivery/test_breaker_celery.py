"""A complaint spike mid-send stops new batches; a resume finishes the edition, every reader
exactly once.

Two real Celery workers on the local Redis send through the SendGrid-compatible sink, slowed
to a quarter of a second per request so the spike lands mid-send. Once a few requests were
accepted, the sink's side posts signed "spamreport" events for three of their readers (as
SendGrid would) to ``/webhooks/sendgrid`` of the real web app under uvicorn, which applies
them and runs the complaint breaker: 3 complaints of a few hundred readers handed over pass
0.3%. The edition is paused; the batches in flight finish, the workers drain the queued
messages without claiming anything (no retries), reconcile re-drives nothing. Then
``resume_edition`` hands the pending batches back, and the edition ends "sent" with every
reader counted once by the sink.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import select

from digest.bootstrap import build
from digest.delivery.dispatch import CeleryDispatch
from digest.delivery.pause import BREAKER_PREFIX, resume_edition
from digest.delivery.progress import edition_progress
from digest.delivery.reconcile import reconcile
from digest.delivery.send import send_digest
from digest.runtime import App
from digest.store.models import Batch, BatchStatus, Edition, EditionStatus, utcnow
from digest.tasks import make_celery
from tests.conftest import clean_pg_app, make_settings
from tests.delivery.test_in_doubt_celery import running_web
from tests.delivery_helpers import add_post, add_readers
from tests.sendgrid_sink import celery_workers, running_sink, wait_for, worker_env
from tests.webhook_signing import PUBLIC, signed_headers

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(180)]
READERS = 3000
STALE = 3
SLOW = 0.25  # seconds the sink takes per request
SPIKE_AFTER = 4  # accepted requests before the spam reports come in
COMPLAINTS = 3


@pytest.fixture
def pg_app(pg_database: str, redis_url: str, tmp_path: Path) -> Iterator[App]:
    settings = make_settings(tmp_path, database_url=pg_database, broker_url=redis_url,
                             batch_size=100, batch_stale_seconds=STALE,
                             mail_backend="sendgrid", sendgrid_api_key="test",
                             sendgrid_host="http://127.0.0.1:9",
                             sendgrid_webhook_public_key=PUBLIC)
    app = clean_pg_app(settings)
    yield app
    app.engine.dispose()


class SpamReporter:
    """Slows the sink, and after ``SPIKE_AFTER`` accepted requests posts signed spam reports
    for the first reader of each of ``COMPLAINTS`` of them, from another thread."""

    def __init__(self, web: str) -> None:
        self.web = web
        self.lock = threading.Lock()
        self.accepted: list[dict[str, object]] = []
        self.answers: list[int] = []
        self.posted = threading.Event()

    def on_accept(self, personalizations: list[dict[str, object]]) -> None:
        time.sleep(SLOW)
        with self.lock:
            self.accepted.append(personalizations[0])
            spike = len(self.accepted) == SPIKE_AFTER
        if spike:
            threading.Thread(target=self._report, daemon=True).start()

    def _report(self) -> None:
        events = []
        for n, personalization in enumerate(self.accepted[:COMPLAINTS]):
            to = personalization["to"][0]  # type: ignore[index]
            events.append({"email": to["email"], "event": "spamreport",
                           "timestamp": int(time.time()), "sg_event_id": f"spam-{n}",
                           **personalization["custom_args"]})  # type: ignore[dict-item]
        body = json.dumps(events).encode()
        with httpx.Client(timeout=30) as client:
            answer = client.post(f"{self.web}/webhooks/sendgrid", content=body,
                                 headers=signed_headers(body))
        self.answers.append(answer.status_code)
        self.posted.set()


def _batches(app: App, edition_id: int) -> dict[str, BatchStatus]:
    with app.sessions() as s:
        return {str(b): st for b, st in s.execute(select(Batch.id, Batch.status)
                    .where(Batch.edition_id == edition_id))}


def _env(app: App, sink_url: str) -> dict[str, str]:
    s = app.settings
    return worker_env(s.database_url, s.broker_url, sink_url, DIGEST_BATCH_SIZE="100",
                      DIGEST_BATCH_STALE_SECONDS=str(STALE), DIGEST_MAX_SEND_ATTEMPTS="30",
                      DIGEST_SENDGRID_WEBHOOK_PUBLIC_KEY=PUBLIC)


def test_a_complaint_spike_pauses_the_send_and_a_resume_finishes_it(
        pg_app: App, redis_url: str, tmp_path: Path) -> None:
    add_post(pg_app)
    add_readers(pg_app, READERS)
    dispatch = CeleryDispatch(send_task=make_celery(pg_app.settings).send_task)
    broker = redis.Redis.from_url(redis_url)
    with running_web(build(pg_app.settings)) as web, running_sink() as sink, \
            celery_workers(2, _env(pg_app, sink.url), tmp_path):
        reporter = SpamReporter(web)
        sink.on_accept = reporter.on_accept
        result = send_digest(pg_app, queue=True, dispatch=dispatch)
        edition_id = int(result.edition_id)
        assert (result.status, result.batches) == ("queued", READERS // 100)

        def paused() -> bool:
            return edition_progress(pg_app, edition_id, utcnow()).paused

        assert reporter.posted.wait(60), "no spam report was posted"
        assert reporter.answers == [200]
        assert wait_for(paused, 10), "the breaker did not pause the edition"
        progress = edition_progress(pg_app, edition_id, utcnow())
        assert progress.pause_reason.startswith(BREAKER_PREFIX)
        assert progress.complaints == COMPLAINTS

        # The batches in flight finish; the queued messages are drained without a claim.
        assert wait_for(lambda: BatchStatus.SENDING not in _batches(pg_app, edition_id).values()
                        and broker.llen("celery") == 0, 30), "the workers did not settle"
        settled, requests = _batches(pg_app, edition_id), sink.requests
        pending = [b for b, status in settled.items() if status is BatchStatus.PENDING]
        assert pending, "the spike came too late: every batch was already claimed"
        assert reconcile(pg_app, dispatch=dispatch).redriven == []
        time.sleep(2 * STALE)  # stale by now: reconcile would re-drive a running edition
        assert reconcile(pg_app, dispatch=dispatch).redriven == []
        assert _batches(pg_app, edition_id) == settled, "a batch was claimed while paused"
        assert sink.requests == requests
        handed_while_paused = len(sink.received)
        assert handed_while_paused < READERS
        print(f"\npaused after {handed_while_paused} of {READERS} readers: "
              f"{progress.pause_reason}; {len(pending)} batches pending")

        assert resume_edition(pg_app, edition_id, now=utcnow(), dispatch=dispatch) == \
            len(pending)

        def finished() -> bool:
            reconcile(pg_app, dispatch=dispatch)
            with pg_app.sessions() as s:
                return s.get(Edition, edition_id).status is not EditionStatus.SENDING

        assert wait_for(finished, 90, interval=1.0), "the edition did not finish in time"
    with pg_app.sessions() as s:
        edition = s.get(Edition, edition_id)
        assert edition.status is EditionStatus.SENT and edition.paused_at is None
    assert len(sink.received) == READERS
    assert set(sink.received.values()) == {1}
    done = edition_progress(pg_app, edition_id, utcnow())
    assert (done.done, done.readers_handed_over, done.failures) == (True, READERS, 0)
