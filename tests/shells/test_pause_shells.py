"""`digest pause`/`digest resume` and POST /admin/editions/{id}/pause|resume, as an operator
uses them: messages, exit codes and status codes, the broker down, and stats showing why."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from kombu.exceptions import OperationalError
from sqlalchemy import select
from typer.testing import CliRunner

from digest.bootstrap import build
from digest.cli import cli
from digest.delivery.batch import send_batch
from digest.delivery.dispatch import CeleryDispatch
from digest.delivery.send import send_digest
from digest.runtime import App
from digest.store import migrate as schema
from digest.store.models import Batch, BatchStatus, Edition
from digest.web.admin import router
from tests.delivery_helpers import add_post, add_readers

runner = CliRunner()
AUTH = {"Authorization": "Bearer test-admin-token"}


def _queued(app: App, readers: int = 6) -> int:
    add_post(app)
    add_readers(app, readers)
    return int(send_digest(app, queue=True, dispatch=lambda ids: None).edition_id)


@pytest.fixture
def cli_app(env: dict[str, str]) -> Iterator[App]:
    app = build()
    schema.upgrade(app.engine)
    app.settings = app.settings.model_copy(update={"batch_size": 2})
    yield app
    app.engine.dispose()


def test_cli_pause_and_resume(cli_app: App, monkeypatch, redis_url: str) -> None:
    edition = _queued(cli_app)
    paused = runner.invoke(cli, ["pause", str(edition)])
    assert paused.exit_code == 0, paused.output
    assert f"edition {edition} paused" in paused.output
    assert f"digest resume {edition}" in paused.output
    again = runner.invoke(cli, ["pause", str(edition)])
    assert again.exit_code == 0 and "already paused (paused by the operator)" in again.output

    stats = runner.invoke(cli, ["stats"])
    assert f"#{edition} " in stats.output and "sending (paused)" in stats.output
    assert "paused by the operator" in stats.output

    monkeypatch.setenv("DIGEST_BROKER_URL", "redis://127.0.0.1:1/0")
    down = runner.invoke(cli, ["resume", str(edition)])
    assert down.exit_code == 1
    assert "broker" in down.output and "reconcile" in down.output

    runner.invoke(cli, ["pause", str(edition)])
    monkeypatch.setenv("DIGEST_BROKER_URL", redis_url)
    broker = redis.Redis.from_url(redis_url)
    broker.delete("celery")
    try:
        resumed = runner.invoke(cli, ["resume", str(edition)])
        assert resumed.exit_code == 0, resumed.output
        assert f"edition {edition} resumed: 3 batches handed to the workers" in resumed.output
        assert broker.llen("celery") == 3  # one message per pending batch
    finally:
        broker.delete("celery")
    idle = runner.invoke(cli, ["resume", str(edition)])
    assert idle.exit_code == 0 and "not paused" in idle.output
    assert "(paused)" not in runner.invoke(cli, ["stats"]).output


def test_cli_resume_here_sends_the_rest_in_this_process(cli_app: App,
                                                        env: dict[str, str]) -> None:
    edition = _queued(cli_app)
    with cli_app.sessions() as s:  # the first batch went out before the pause
        first = s.scalars(select(Batch.id).order_by(Batch.seq)).first()
    assert send_batch(cli_app, first).status == "sent"
    assert runner.invoke(cli, ["pause", str(edition)]).exit_code == 0
    outbox = Path(env["DIGEST_OUTBOX_DIR"])
    assert len(list(outbox.glob("*.eml"))) == 2
    resumed = runner.invoke(cli, ["resume", str(edition), "--here"])
    assert resumed.exit_code == 0, resumed.output
    assert f"edition {edition}: sent" in resumed.output
    mailed = [path.read_text() for path in outbox.glob("*.eml")]
    assert len(mailed) == 6
    assert all(sum(f"reader{i}@example.org" in m for m in mailed) >= 1 for i in range(6))


def test_cli_refuses_what_is_not_being_sent(cli_app: App) -> None:
    missing = runner.invoke(cli, ["pause", "99"])
    assert missing.exit_code == 1 and "no edition 99" in missing.output
    add_post(cli_app)
    add_readers(cli_app, 2)
    sent = send_digest(cli_app, manual=True)
    for command in ("pause", "resume"):
        refused = runner.invoke(cli, [command, str(sent.edition_id)])
        assert refused.exit_code == 1
        assert "is sent, not being sent" in refused.output
    assert runner.invoke(cli, ["pause", "0"]).exit_code == 2


@pytest.fixture
def client(app: App) -> Iterator[TestClient]:
    api = FastAPI()
    api.include_router(router)
    api.state.digest = app
    app.settings = app.settings.model_copy(update={"batch_size": 2})
    with TestClient(api) as made:
        yield made


def _refused(*args: object, **kwargs: object) -> None:
    raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


def test_api_pause_and_resume(client: TestClient, app: App) -> None:
    edition = _queued(app)
    url = f"/admin/editions/{edition}"
    assert client.post(f"{url}/pause").status_code == 401
    paused = client.post(f"{url}/pause", headers=AUTH)
    assert paused.status_code == 200
    body = paused.json()
    assert body["paused"] is True and body["progress"]["paused"] is True
    assert body["progress"]["pause_reason"] == "paused by the operator"
    assert body["progress"]["batches"]["pending"] == 3
    assert client.post(f"{url}/pause", headers=AUTH).json()["paused"] is False

    app.dispatch = CeleryDispatch(send_task=_refused)
    down = client.post(f"{url}/resume", headers=AUTH)
    assert down.status_code == 503 and "reconcile" in down.json()["detail"]

    client.post(f"{url}/pause", headers=AUTH)
    queued: list[str] = []
    app.dispatch = queued.extend
    resumed = client.post(f"{url}/resume", headers=AUTH)
    assert resumed.status_code == 200
    assert resumed.json()["queued"] == 3 and resumed.json()["progress"]["paused"] is False
    assert queued == [f"{edition}-{n}" for n in (1, 2, 3)]
    assert client.post(f"{url}/resume", headers=AUTH).json()["queued"] == 0
    progress = client.get(f"{url}/progress", headers=AUTH)
    assert progress.status_code == 200 and progress.json()["readers_planned"] == 6
    with app.sessions() as s:
        assert s.get(Edition, edition).paused_at is None
        assert set(s.scalars(select(Batch.status))) == {BatchStatus.PENDING}


def test_api_refuses_what_is_not_being_sent(client: TestClient, app: App) -> None:
    assert client.post("/admin/editions/99/pause", headers=AUTH).status_code == 404
    assert client.post("/admin/editions/99/resume", headers=AUTH).status_code == 404
    assert client.get("/admin/editions/99/progress", headers=AUTH).status_code == 404
    assert client.post("/admin/editions/0/pause", headers=AUTH).status_code == 422
    add_post(app)
    add_readers(app, 2)
    sent = send_digest(app, manual=True)
    refused = client.post(f"/admin/editions/{sent.edition_id}/pause", headers=AUTH)
    assert refused.status_code == 409 and "not being sent" in refused.json()["detail"]
    assert client.post(f"/admin/editions/{sent.edition_id}/resume",
                       headers=AUTH).status_code == 409
