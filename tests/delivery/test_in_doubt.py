"""A batch whose worker died after its request went out is settled from the provider's record.

With the SendGrid Event Webhook configured, reconcile marks such a batch in doubt, waits
``DIGEST_IN_DOUBT_MINUTES`` for "processed" events, then re-sends it only to the readers with
no record. Without a webhook it is re-driven as soon as it is stale, as before. SQLite and
PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from digest.delivery import record
from digest.delivery.reconcile import reconcile
from digest.delivery.stats import stats
from digest.runtime import App
from digest.store.models import (
    Batch,
    BatchStatus,
    Cadence,
    DeliveryStatus,
    Edition,
    EditionStatus,
    Subscriber,
)
from digest.store.sessions import transaction
from tests.delivery_helpers import add_post, add_readers

READERS = 6


def _with_webhook(app: App, minutes: float = 15) -> None:
    app.settings = app.settings.model_copy(update={
        "mail_backend": "sendgrid", "sendgrid_webhook_public_key": "a-verification-key",
        "in_doubt_minutes": minutes})


def _worker_died_mid_send(app: App, accepted: int) -> tuple[int, str, datetime]:
    """A queued edition whose one batch a dead worker claimed; the provider accepted the
    request and reported the first ``accepted`` readers as "processed" on the webhook."""
    post_id = add_post(app)
    add_readers(app, READERS)
    claimed = datetime.now(UTC) - timedelta(seconds=app.settings.batch_stale_seconds + 5)
    with transaction(app.sessions) as s:
        ids = list(s.scalars(select(Subscriber.id).order_by(Subscriber.id)))
        edition = Edition(key="weekly:2026-11-23", cadence=Cadence.WEEKLY,
                          status=EditionStatus.SENDING, subject="This week", html="<p>Hi</p>",
                          text="Hi", post_ids=[post_id], recipient_count=READERS, batch_count=1,
                          max_subscriber_id=ids[-1], created_at=claimed)
        s.add(edition)
        s.flush()
        edition_id, batch_id = edition.id, f"{edition.id}-1"
        # The worker claimed the batch, its request went out, and then it died.
        s.add(Batch(id=batch_id, edition_id=edition_id, seq=1, after_id=0, upto_id=ids[-1],
                    size=READERS, status=BatchStatus.SENDING, attempts=1, claimed_at=claimed))
        ids = ids[:accepted]
        for sid in ids:
            record.apply_event(s, edition_id, sid, DeliveryStatus.PROCESSED, claimed)
    return edition_id, batch_id, claimed


def _status(app: App, batch_id: str) -> BatchStatus:
    with app.sessions() as s:
        return s.get(Batch, batch_id).status


def test_in_doubt_batch_waits_then_goes_only_to_readers_without_an_event(app, transport):
    _with_webhook(app, minutes=15)
    edition_id, batch_id, _ = _worker_died_mid_send(app, accepted=4)
    now = datetime.now(UTC)

    report = reconcile(app, now=now)
    assert report.redriven == [] and report.in_doubt == [batch_id]
    assert _status(app, batch_id) is BatchStatus.IN_DOUBT
    assert transport.sent == []
    with app.sessions() as s:  # an edition with a batch in doubt is not finished
        assert s.get(Edition, edition_id).status is EditionStatus.SENDING
    (shown,) = stats(app).editions  # the operator sees who is still unsettled, and why
    assert shown.readers.in_doubt == READERS - 4
    assert any("in doubt" in error and "15 min" in error for error in shown.errors)

    # Still inside the wait: nothing is sent, however often reconcile runs.
    assert reconcile(app, now=now + timedelta(minutes=14)).redriven == []
    assert transport.sent == []

    after = now + timedelta(minutes=16)
    assert reconcile(app, now=after).redriven == [batch_id]
    assert sorted(transport.recipients) == ["reader4@example.org", "reader5@example.org"]
    reconcile(app)
    with app.sessions() as s:
        assert s.get(Edition, edition_id).status is EditionStatus.SENT
        assert sum(record.counts(s, edition_id).values()) == READERS


def test_in_doubt_batch_every_reader_accepted_sends_nobody(app, transport):
    _with_webhook(app, minutes=1)
    edition_id, batch_id, _ = _worker_died_mid_send(app, accepted=READERS)
    now = datetime.now(UTC)
    assert reconcile(app, now=now).in_doubt == [batch_id]
    assert reconcile(app, now=now + timedelta(minutes=2)).redriven == [batch_id]
    assert transport.sent == [] or transport.recipients == []
    reconcile(app)
    with app.sessions() as s:
        assert s.get(Edition, edition_id).status is EditionStatus.SENT


def test_without_a_webhook_a_stale_batch_is_redriven_at_once(app, transport):
    app.settings = app.settings.model_copy(update={"mail_backend": "sendgrid"})
    _, batch_id, _ = _worker_died_mid_send(app, accepted=0)
    report = reconcile(app)
    assert report.redriven == [batch_id] and report.in_doubt == []
    assert len(transport.recipients) == READERS
    assert "DIGEST_SENDGRID_WEBHOOK_PUBLIC_KEY" in stats(app).describe()
    _with_webhook(app)
    assert "DIGEST_SENDGRID_WEBHOOK_PUBLIC_KEY" not in stats(app).describe()


def test_smtp_keeps_redriving_at_once_even_with_a_webhook_key(app, transport):
    _with_webhook(app)
    app.settings = app.settings.model_copy(update={"mail_backend": "smtp"})
    _, batch_id, _ = _worker_died_mid_send(app, accepted=0)
    assert reconcile(app).redriven == [batch_id]
    assert len(transport.recipients) == READERS
