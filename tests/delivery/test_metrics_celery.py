"""After a real send through Celery workers, the web app's /metrics counts it exactly.

Every process is real and writes to one PROMETHEUS_MULTIPROC_DIR, as in the compose stack: the
web app (`digest serve`, signing readers up and confirming them over HTTP), two prefork
workers (the poll task, the batches, through the local SendGrid sink), and the scrape
reads them all back from the web app, with its token.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from digest.config import SAMPLE_FEED
from digest.delivery.dispatch import CeleryDispatch
from digest.delivery.send import send_digest
from digest.mail.links import confirm_url
from digest.runtime import App
from digest.store.models import Edition, EditionStatus, Post, Subscriber
from digest.tasks import make_celery
from tests.conftest import REPO, clean_pg_app, make_settings
from tests.sendgrid_sink import celery_workers, running_sink, wait_for, worker_env
from tests.smtp_server import free_port

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(240)]
READERS = 12  # the sign-up rate limit allows 20 an hour from one address
BATCH = 5  # 12 readers: batches of 5, 5 and 2
TOKEN = "metrics-secret"


@pytest.fixture
def pg_app(pg_database: str, redis_url: str, tmp_path: Path) -> App:
    settings = make_settings(tmp_path, database_url=pg_database, broker_url=redis_url,
                             batch_size=BATCH, mail_backend="sendgrid", sendgrid_api_key="test",
                             sendgrid_host="http://127.0.0.1:9")
    app = clean_pg_app(settings)
    yield app
    app.engine.dispose()


def _samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_after_a_real_send(pg_app: App, tmp_path: Path) -> None:
    prom = tmp_path / "prom"
    prom.mkdir()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running_sink() as sink:
        env = worker_env(pg_app.settings.database_url, pg_app.settings.broker_url, sink.url,
                         PROMETHEUS_MULTIPROC_DIR=str(prom), DIGEST_METRICS_TOKEN=TOKEN,
                         DIGEST_BATCH_SIZE=str(BATCH), DIGEST_FEED_URL=str(SAMPLE_FEED),
                         DIGEST_FIRST_POLL_WINDOW_DAYS="100000", DIGEST_MIN_FILL_SECONDS="0",
                         DIGEST_ALLOWED_HOSTS="127.0.0.1", DIGEST_DISPATCH="inline",
                         DIGEST_POSTAL_ADDRESS="1 Example Street, Istanbul")
        log = open(tmp_path / "web.log", "wb")  # noqa: SIM115
        web = subprocess.Popen(
            [sys.executable, "-c", "from digest.cli import main; main()", "serve",
             "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            with httpx.Client(base_url=base, timeout=10) as http:
                assert wait_for(lambda: _up(http), 30), (tmp_path / "web.log").read_text()
                _sign_up_and_confirm(pg_app, http)
                with celery_workers(2, env, tmp_path, pool="prefork") as _:
                    celery = make_celery(pg_app.settings)
                    celery.send_task("digest.tasks.poll_feeds_task")
                    assert wait_for(lambda: _count(pg_app, Post) > 0, 60), "nothing polled"
                    result = send_digest(pg_app, queue=True,
                                         dispatch=CeleryDispatch(send_task=celery.send_task))
                    assert result.batches == 3

                    def sent() -> bool:
                        with pg_app.sessions() as s:
                            edition = s.get(Edition, result.edition_id)
                            return edition.status is not EditionStatus.SENDING

                    assert wait_for(sent, 90), "the edition did not finish"
                assert http.get("/metrics").status_code == 401
                assert http.get("/metrics", headers=_auth("wrong")).status_code == 403
                answer = http.get("/metrics", headers=_auth(TOKEN))
        finally:
            os.killpg(web.pid, signal.SIGTERM)
            web.wait(10)
            log.close()
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    got = _samples(answer.text)
    posts = _count(pg_app, Post)
    assert _value(got, "digest_batches_total", outcome="sent") == 3
    assert _value(got, "digest_batches_total", outcome="failed") == 0
    assert _value(got, "digest_readers_handed_over_total") == READERS
    assert _value(got, "digest_signups_total") == READERS
    assert _value(got, "digest_confirmations_total") == READERS
    assert _value(got, "digest_polls_total", outcome="new") == 1
    assert _value(got, "digest_posts_stored_total") == posts
    # 3 digest requests, and a confirmation and a welcome mail per reader, all to the sink
    assert _value(got, "digest_provider_request_seconds_count",
                  provider="sendgrid") == 3 + 2 * READERS
    assert _value(got, "digest_readers", status="active") == READERS
    assert _value(got, "digest_editions", status="sent") == 1
    assert _value(got, "digest_last_successful_poll_age_seconds") < 300
    assert math.isinf(_value(got, "digest_beat_last_tick_age_seconds"))  # no beat here
    assert sum(sink.received.values()) == 3 * READERS


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _up(http: httpx.Client) -> bool:
    try:
        return http.get("/healthz").status_code == 200
    except httpx.HTTPError:
        return False


def _count(app: App, model: type) -> int:
    with app.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _sign_up_and_confirm(app: App, http: httpx.Client) -> None:
    """READERS sign-ups and confirmations over HTTP, as readers make them."""
    for i in range(READERS):
        answer = http.post("/subscribe", json={"email": f"reader{i}@example.org"})
        assert answer.status_code == 200, answer.text
    assert wait_for(lambda: _count(app, Subscriber) == READERS, 30)
    with app.sessions() as s:
        readers = list(s.execute(select(Subscriber.id, Subscriber.link_key)))
    for subscriber_id, link_key in readers:
        url = confirm_url(app.settings, app.tokens, subscriber_id, link_key)
        answer = http.post(url.replace(app.settings.base_url, ""))
        assert answer.status_code == 200, answer.text
