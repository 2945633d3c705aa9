"""Console send now with a real Celery worker on the local Redis and PostgreSQL, mailing a local
SendGrid-compatible sink: the progress fragment reaches "sent"; a send paused mid-way claims no
new batch until it is resumed, and every reader still gets the digest exactly once."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.runtime import App
from tests.conftest import clean_pg_app, make_settings
from tests.delivery_helpers import add_post, add_readers
from tests.sendgrid_sink import celery_workers, running_sink, wait_for, worker_env
from tests.web.console_client import signed_in_client

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(240)]
BATCH = 50
HANDED = re.compile(r'data-testid="progress-handed">(\d+) of (\d+)<')
STATUS = re.compile(r'data-testid="progress-status">([^<]+)<')


@pytest.fixture
def pg_app(pg_database: str, redis_url: str, tmp_path: Path) -> Iterator[App]:
    settings = make_settings(tmp_path, database_url=pg_database, broker_url=redis_url,
                             batch_size=BATCH, mail_backend="sendgrid", sendgrid_api_key="test",
                             sendgrid_host="http://127.0.0.1:9")
    app = clean_pg_app(settings)
    yield app
    app.engine.dispose()


def _env(app: App, sink_url: str) -> dict[str, str]:
    s = app.settings
    return worker_env(s.database_url, s.broker_url, sink_url, DIGEST_BATCH_SIZE=str(BATCH),
                      DIGEST_MAX_SEND_ATTEMPTS="30")


def _progress(client, edition_id: int) -> tuple[str, int, int]:
    page = client.get(f"/admin/sends/{edition_id}/progress").text
    status, handed = STATUS.search(page), HANDED.search(page)
    assert status is not None and handed is not None, page
    return status.group(1).strip(), int(handed.group(1)), int(handed.group(2))


def _start(client, csrf: str) -> int:
    response = client.post("/admin/send-now", data={"csrf_token": csrf, "cadence": "weekly",
                                                    "confirm": "yes"}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return int(response.headers["location"].rsplit("/", 1)[1])


def test_send_now_through_a_worker_reaches_sent(pg_app: App, tmp_path: Path) -> None:
    readers = 1000
    add_post(pg_app)
    add_readers(pg_app, readers)
    client, csrf = signed_in_client(pg_app)
    with running_sink() as sink, celery_workers(1, _env(pg_app, sink.url), tmp_path):
        edition_id = _start(client, csrf)
        assert wait_for(lambda: _progress(client, edition_id)[0] == "sent", 90, interval=1.0)
    assert _progress(client, edition_id) == ("sent", readers, readers)
    assert "hx-trigger" not in client.get(f"/admin/sends/{edition_id}/progress").text
    assert len(sink.received) == readers and set(sink.received.values()) == {1}


def test_pause_and_resume_with_the_worker_running(pg_app: App, tmp_path: Path) -> None:
    readers = 1500
    add_post(pg_app)
    add_readers(pg_app, readers)
    client, csrf = signed_in_client(pg_app)
    with running_sink() as sink, celery_workers(1, _env(pg_app, sink.url), tmp_path):
        sink.hold_at = 3  # the worker is mid-send of its third batch when the operator pauses
        edition_id = _start(client, csrf)
        assert sink.held.wait(60), "the worker sent nothing"
        paused = client.post(f"/admin/sends/{edition_id}/pause", data={"csrf_token": csrf},
                             follow_redirects=True)
        assert STATUS.search(paused.text).group(1) == "paused"  # type: ignore[union-attr]
        sink.release.set()  # that request fails; its batch waits, like every other
        time.sleep(3)  # the worker drains its queue: every batch it takes now is skipped
        status, handed, planned = _progress(client, edition_id)
        assert (status, planned) == ("paused", readers) and handed < readers
        time.sleep(2)
        assert _progress(client, edition_id) == (status, handed, planned)  # nothing moves
        sent_while_paused = sum(sink.received.values())
        assert sent_while_paused == handed
        resumed = client.post(f"/admin/sends/{edition_id}/resume", data={"csrf_token": csrf},
                              follow_redirects=True)
        assert STATUS.search(resumed.text).group(1) in ("sending", "sent")  # type: ignore[union-attr]
        assert wait_for(lambda: _progress(client, edition_id)[0] == "sent", 90, interval=1.0)
    assert _progress(client, edition_id) == ("sent", readers, readers)
    assert len(sink.received) == readers and set(sink.received.values()) == {1}
