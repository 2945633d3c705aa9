"""Console send now: who gets what, the confirmation step, the queued send and its progress,
pause and resume, and the broker being down; on SQLite and PostgreSQL, batches run in-process."""

from __future__ import annotations

import dataclasses
import re

from sqlalchemy import select

from digest.delivery.batch import send_batch
from digest.errors import BrokerUnavailableError
from digest.store.models import Batch, BatchStatus, Cadence, Edition, EditionStatus
from tests.delivery_helpers import add_post, add_readers
from tests.web.console_client import signed_in_client

STATUS = re.compile(r'data-testid="progress-status">([^<]+)<')


def status_of(page: str) -> str:
    found = STATUS.search(page)
    assert found is not None, page
    return found.group(1).strip()


class Recording:
    """A dispatcher that keeps the batch ids it was handed (no broker)."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def __call__(self, batch_ids) -> None:
        self.ids.extend(batch_ids)


def _queued_app(app, batch_size: int = 2):
    dispatch = Recording()
    settings = app.settings.model_copy(update={"batch_size": batch_size})
    return dataclasses.replace(app, settings=settings, dispatch=dispatch), dispatch


def test_send_now_shows_who_gets_what_per_cadence(app) -> None:
    add_readers(app, 3)
    add_readers(app, 2, start=100, cadence=Cadence.DAILY)
    add_post(app, "First post")
    add_post(app, "Second post")
    client, _ = signed_in_client(app)
    response = client.get("/admin/send-now?cadence=daily")
    assert response.status_code == 200
    rows = {c: response.text.split(f'data-testid="plan-{c}"', 1)[1].split("</tr>", 1)[0]
            for c in ("weekly", "daily", "instant")}
    assert '<td class="num">3</td>' in rows["weekly"]
    assert '<td class="num">2</td>' in rows["daily"]
    assert '<td class="num">0</td>' in rows["instant"]
    assert "First post" in response.text and "Second post" in response.text
    assert 'name="cadence" value="daily"' in response.text
    assert "send the daily digest to 2 readers now" in response.text


def test_send_needs_the_confirmation_box(app) -> None:
    add_readers(app, 2)
    add_post(app, "Post")
    client, csrf = signed_in_client(app)
    response = client.post("/admin/send-now", data={"csrf_token": csrf, "cadence": "weekly"})
    assert response.status_code == 400 and "nothing was sent" in response.text
    refused = client.post("/admin/send-now", data={"cadence": "weekly", "confirm": "yes"})
    assert refused.status_code == 403
    with app.sessions() as s:
        assert s.scalars(select(Edition)).first() is None


def test_confirmed_send_is_queued_and_its_progress_reaches_sent(app, transport) -> None:
    add_readers(app, 5)
    add_post(app, "Post")
    queued, dispatch = _queued_app(app)
    client, csrf = signed_in_client(queued)
    response = client.post("/admin/send-now", data={"csrf_token": csrf, "cadence": "weekly",
                                                    "confirm": "yes"}, follow_redirects=False)
    assert response.status_code == 303
    edition_id = int(response.headers["location"].rsplit("/", 1)[1])
    assert response.headers["location"] == f"/admin/sends/{edition_id}"
    assert len(dispatch.ids) == 3 and transport.sent == []  # queued, not sent here
    page = client.get(f"/admin/sends/{edition_id}")
    assert page.status_code == 200 and status_of(page.text) == "sending"
    assert f'hx-get="/admin/sends/{edition_id}/progress"' in page.text
    assert 'hx-trigger="every 1s"' in page.text and 'data-testid="progress-pause"' in page.text
    send_batch(queued, dispatch.ids[0])
    fragment = client.get(f"/admin/sends/{edition_id}/progress")
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert status_of(fragment.text) == "sending"
    assert "2 of 5" in fragment.text
    for batch_id in dispatch.ids[1:]:
        send_batch(queued, batch_id)
    done = client.get(f"/admin/sends/{edition_id}/progress")
    assert status_of(done.text) == "sent" and "5 of 5" in done.text
    assert "hx-trigger" not in done.text  # polling stops
    assert "progress-pause" not in done.text and len(transport.recipients) == 5


def test_pause_and_resume_a_running_send(app, transport) -> None:
    add_readers(app, 6)
    add_post(app, "Post")
    queued, dispatch = _queued_app(app)
    client, csrf = signed_in_client(queued)
    response = client.post("/admin/send-now", data={"csrf_token": csrf, "cadence": "weekly",
                                                    "confirm": "yes"}, follow_redirects=True)
    assert response.status_code == 200  # followed to the progress page
    edition_id = int(str(response.url).rsplit("/", 1)[1])
    send_batch(queued, dispatch.ids[0])
    paused = client.post(f"/admin/sends/{edition_id}/pause", data={"csrf_token": csrf},
                         follow_redirects=True)
    assert paused.status_code == 200 and status_of(paused.text) == "paused"
    assert 'data-testid="progress-resume"' in paused.text
    for batch_id in dispatch.ids[1:]:  # messages already queued: no batch is claimed
        send_batch(queued, batch_id)
    assert len(transport.recipients) == 2
    with app.sessions() as s:
        assert s.scalar(select(Edition.status)) is EditionStatus.SENDING
    handed = len(dispatch.ids)
    resumed = client.post(f"/admin/sends/{edition_id}/resume", data={"csrf_token": csrf},
                          follow_redirects=True)
    assert resumed.status_code == 200 and status_of(resumed.text) == "sending"
    again = dispatch.ids[handed:]
    assert sorted(again) == sorted(dispatch.ids[1:handed])  # the waiting batches, again
    for batch_id in again:
        send_batch(queued, batch_id)
    assert status_of(client.get(f"/admin/sends/{edition_id}/progress").text) == "sent"
    assert sorted(transport.recipients) == sorted(f"reader{i}@example.org" for i in range(6))


def test_pause_needs_the_csrf_token(app) -> None:
    add_readers(app, 3)
    add_post(app, "Post")
    queued, _ = _queued_app(app)
    client, csrf = signed_in_client(queued)
    client.post("/admin/send-now", data={"csrf_token": csrf, "cadence": "weekly",
                                         "confirm": "yes"})
    with app.sessions() as s:
        edition_id = s.scalar(select(Edition.id))
    assert client.post(f"/admin/sends/{edition_id}/pause", data={}).status_code == 403
    with app.sessions() as s:
        assert s.scalar(select(Edition.paused_at)) is None


def test_a_broker_that_is_down_is_said_plainly(app) -> None:
    add_readers(app, 2)
    add_post(app, "Post")

    def down(batch_ids) -> None:
        raise BrokerUnavailableError("connection refused")

    client, csrf = signed_in_client(dataclasses.replace(app, dispatch=down))
    response = client.post("/admin/send-now", data={"csrf_token": csrf, "cadence": "weekly",
                                                    "confirm": "yes"})
    assert response.status_code == 503
    assert "the Celery broker did not take the batches (connection refused)" in response.text
    with app.sessions() as s:  # recorded: reconcile sends them once the broker is back
        assert s.scalars(select(Batch.status)).all() == [BatchStatus.PENDING]


def test_nothing_new_sends_nothing_and_says_why(app) -> None:
    add_readers(app, 2)
    client, csrf = signed_in_client(app)
    page = client.get("/admin/send-now")
    assert 'data-testid="send-nothing"' in page.text and "send-start" not in page.text
    response = client.post("/admin/send-now", data={"csrf_token": csrf, "cadence": "weekly",
                                                    "confirm": "yes"})
    assert response.status_code == 200 and "Nothing sent: nothing new to send" in response.text


def test_progress_of_no_such_send_is_404(app) -> None:
    client, _ = signed_in_client(app)
    assert client.get("/admin/sends/999").status_code == 404
    assert client.get("/admin/sends/999/progress").status_code == 404


def test_resume_with_the_broker_down_says_reconcile_sends_them(app) -> None:
    add_readers(app, 4)
    add_post(app, "Post")
    queued, _ = _queued_app(app)
    client, csrf = signed_in_client(queued)
    client.post("/admin/send-now", data={"csrf_token": csrf, "cadence": "weekly",
                                         "confirm": "yes"})
    with app.sessions() as s:
        edition_id = s.scalar(select(Edition.id))
    client.post(f"/admin/sends/{edition_id}/pause", data={"csrf_token": csrf})

    def down(batch_ids) -> None:
        raise BrokerUnavailableError("connection refused")

    broken, token = signed_in_client(dataclasses.replace(queued, dispatch=down))
    resumed = broken.post(f"/admin/sends/{edition_id}/resume", data={"csrf_token": token},
                          follow_redirects=True)
    assert "Resumed, but the Celery broker did not take the batches" in resumed.text
    assert status_of(resumed.text) == "sending"  # the resume is recorded
    with app.sessions() as s:
        assert s.scalar(select(Edition.paused_at)) is None
