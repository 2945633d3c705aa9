"""Real Celery workers on each broker (the local Redis, the local RabbitMQ), PostgreSQL, and a
local SendGrid-compatible sink.

A worker is SIGKILLed mid-send and the broker's queue is purged; reconcile re-drives the ledger
and every reader still receives the digest exactly once. Also: the poll and send tasks run in a real
worker, and a weekly beat fired twice for one period sends one edition.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from sqlalchemy import select, text

from digest.delivery.dispatch import CeleryDispatch
from digest.delivery.reconcile import reconcile
from digest.delivery.send import send_digest
from digest.runtime import App
from digest.store.models import Edition, EditionStatus
from digest.tasks import make_celery
from tests.conftest import clean_pg_app, make_settings, purge_broker, worker_pool
from tests.delivery_helpers import add_post, add_readers
from tests.sendgrid_sink import (
    celery_workers,
    pid_with_local_port,
    running_sink,
    wait_for,
    worker_env,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(240)]
READERS = 5000
STALE = 3


@pytest.fixture
def pg_app(pg_database: str, broker: dict[str, str], tmp_path: Path) -> App:
    settings = make_settings(tmp_path, database_url=pg_database, **broker,
                             batch_size=100, batch_stale_seconds=STALE,
                             mail_backend="sendgrid", sendgrid_api_key="test",
                             sendgrid_host="http://127.0.0.1:9")
    app = clean_pg_app(settings)
    purge_broker(app.settings)
    yield app
    app.engine.dispose()


def _env(app: App, sink_url: str, **extra: str) -> dict[str, str]:
    s = app.settings
    return worker_env(s.database_url, s.broker_url, sink_url, DIGEST_REDIS_URL=s.rate_limit_url,
                      DIGEST_BATCH_SIZE="100",
                      DIGEST_BATCH_STALE_SECONDS=str(STALE), DIGEST_MAX_SEND_ATTEMPTS="30",
                      **extra)


def _drive_until_done(app: App, edition_id: int, dispatch, timeout: float = 120) -> Edition:
    def done() -> bool:
        reconcile(app, dispatch=dispatch)
        with app.sessions() as s:
            return s.get(Edition, edition_id).status is not EditionStatus.SENDING

    assert wait_for(done, timeout, interval=1.0), "the edition did not finish in time"
    with app.sessions() as s:
        return s.get(Edition, edition_id)


@pytest.mark.parametrize("fail_rate, kill", [(0.0, True), (0.3, False)],
                         ids=["kill-and-flush", "30pct-429-500"])
def test_every_reader_exactly_once(pg_app: App, tmp_path: Path,
                                   fail_rate: float, kill: bool) -> None:
    add_post(pg_app)
    add_readers(pg_app, READERS)
    celery = make_celery(pg_app.settings)

    dispatch = CeleryDispatch(send_task=celery.send_task)

    with running_sink(fail_rate) as sink, \
            celery_workers(2, _env(pg_app, sink.url), tmp_path,
                           worker_pool(pg_app.settings)) as procs:
        sink.hold_at = 5 if kill else None
        result = send_digest(pg_app, queue=True, dispatch=dispatch)
        assert (result.status, result.batches) == ("queued", READERS // 100)
        if kill:
            assert sink.held.wait(60), "no worker sent anything"
            pid = pid_with_local_port([p.pid for p in procs], sink.held_port)
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            next(p for p in procs if p.pid == pid).wait(10)
            sink.release.set()
            purge_broker(pg_app.settings)  # the queued batches are gone
        edition = _drive_until_done(pg_app, result.edition_id, dispatch)
    assert edition.status is EditionStatus.SENT
    assert len(sink.received) == READERS
    assert set(sink.received.values()) == {1}
    if fail_rate:
        assert sink.failures > 5


def test_poll_and_weekly_schedule_twice_in_real_workers(pg_app: App, tmp_path: Path) -> None:
    add_readers(pg_app, 20)
    feed = Path(__file__).resolve().parents[2] / "digest" / "sample" / "feed.xml"
    celery = make_celery(pg_app.settings)
    with running_sink() as sink, celery_workers(
        2, _env(pg_app, sink.url, DIGEST_FEED_URL=str(feed),
                DIGEST_FIRST_POLL_WINDOW_DAYS="100000"), tmp_path, worker_pool(pg_app.settings)
    ):
        celery.send_task("digest.tasks.poll_feeds_task")

        def polled() -> bool:
            with pg_app.sessions() as s:
                return bool(s.execute(text("SELECT count(*) FROM posts")).scalar())

        assert wait_for(polled, 60), "the poll task stored no posts"
        for _ in range(2):  # the beat fires twice for the same period
            celery.send_task("digest.tasks.send_scheduled_task", args=["weekly"])

        def sent() -> bool:
            with pg_app.sessions() as s:
                return s.scalar(select(Edition.status)) is EditionStatus.SENT

        assert wait_for(sent, 60), "no edition was sent"
        assert wait_for(lambda: sum(sink.received.values()) >= 20, 30)
        wait_for(lambda: False, 2)  # a second send, if there were one, would land now
    with pg_app.sessions() as s:
        editions = list(s.scalars(select(Edition)))
    assert len(editions) == 1 and editions[0].key.startswith("weekly:")
    assert len(sink.received) == 20 and set(sink.received.values()) == {1}
