"""Races between reconcile, workers and claims, run by interleaving the steps in the racy
order. SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import event, select

from digest.delivery.editions import claim_edition
from digest.delivery.ledger import claim_batch
from digest.delivery.reconcile import reconcile
from digest.delivery.send import send_digest
from digest.errors import AlreadySentError
from digest.store.models import Batch, BatchStatus, Cadence, Edition, EditionStatus
from digest.store.sessions import transaction
from tests.delivery_helpers import add_post, add_readers


def _age_edition(app, edition_id: int, seconds: float) -> None:
    """As if the edition, and the queuing of its pending batches, were ``seconds`` old."""
    then = datetime.now(UTC) - timedelta(seconds=seconds)
    with transaction(app.sessions) as s:
        s.get(Edition, edition_id).created_at = then
        for batch in s.scalars(select(Batch).where(Batch.edition_id == edition_id,
                                                   Batch.status == BatchStatus.PENDING)):
            batch.claimed_at = then


def test_reconcile_does_not_reset_a_batch_a_worker_claims_meanwhile(app, transport) -> None:
    add_post(app)
    add_readers(app, 3)
    result = send_digest(app, queue=True, dispatch=lambda ids: None)  # a long fan-out
    batch_id = f"{result.edition_id}-1"
    _age_edition(app, result.edition_id, app.settings.batch_stale_seconds + 60)
    worker_now = datetime.now(UTC)
    claimed: list[bool] = []
    busy: list[bool] = []

    def worker_claims_before_the_update(conn, cursor, statement, *args) -> None:
        # Reconcile has read the batch as pending and stale; a worker takes it now.
        if statement.lstrip().upper().startswith("UPDATE BATCHES") and not busy:
            busy.append(True)
            claimed.append(claim_batch(app, batch_id, worker_now))

    queued: list[str] = []
    event.listen(app.engine, "before_cursor_execute", worker_claims_before_the_update)
    try:
        report = reconcile(app, dispatch=queued.extend)
    finally:
        event.remove(app.engine, "before_cursor_execute", worker_claims_before_the_update)
    assert claimed == [True]
    assert report.redriven == [] and queued == []  # no second worker is sent it
    with app.sessions() as s:
        batch = s.get(Batch, batch_id)
        assert batch.status is BatchStatus.SENDING
        assert batch.claimed_at.replace(tzinfo=UTC) == worker_now
    assert claim_batch(app, batch_id, datetime.now(UTC)) is False  # still the worker's


def test_reconcile_still_redrives_a_stale_pending_batch(app, transport) -> None:
    add_post(app)
    add_readers(app, 3)
    result = send_digest(app, queue=True, dispatch=lambda ids: None)
    _age_edition(app, result.edition_id, app.settings.batch_stale_seconds + 60)
    queued: list[str] = []
    assert reconcile(app, dispatch=queued.extend).redriven == [f"{result.edition_id}-1"]
    assert queued == [f"{result.edition_id}-1"]


def test_a_send_by_hand_racing_the_schedule_does_not_claim_the_same_posts(app,
                                                                          transport) -> None:
    add_post(app)
    add_readers(app, 2)
    outcome: list[object] = []
    beats: list[threading.Thread] = []

    def scheduled() -> None:
        try:
            outcome.append(claim_edition(app, Cadence.WEEKLY))
        except AlreadySentError as exc:  # pragma: no cover - a different key
            outcome.append(exc)

    def meanwhile(session, edition) -> None:
        # The manual claim has chosen its posts but not committed: the beat fires now.
        beat = threading.Thread(target=scheduled)
        beat.start()
        beat.join(timeout=2)
        beats.append(beat)

    manual = claim_edition(app, Cadence.WEEKLY, manual=True, plan=meanwhile)
    beats[0].join(timeout=30)
    assert len(outcome) == 1
    assert manual is not None and manual.status is EditionStatus.SENDING
    with app.sessions() as s:
        claimed = list(s.execute(select(Edition.key, Edition.post_ids).where(
            Edition.status == EditionStatus.SENDING)))
    assert len(claimed) == 1, claimed  # the schedule found nothing new: no post twice
