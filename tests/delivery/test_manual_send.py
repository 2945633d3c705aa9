"""Sends by hand and resends, on SQLite and PostgreSQL: they mean what they say."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from digest.delivery.editions import preview
from digest.delivery.resend import resend_edition
from digest.delivery.send import send_digest
from digest.errors import AlreadySentError, NoSuchEditionError
from digest.store.models import (
    Batch,
    Cadence,
    Delivery,
    DeliveryStatus,
    Edition,
    Subscriber,
)
from digest.store.sessions import transaction
from tests.delivery_helpers import add_post, add_readers

MONDAY = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)  # 09:00 in Istanbul, the schedule's hour


def _subjects(transport) -> list[str]:
    return [mail.subject for mail, _ in transport.sent]


def test_manual_send_after_a_scheduled_one_sends_only_the_new_post(app, transport) -> None:
    add_readers(app, 2)
    add_post(app, "Old news", first_seen=MONDAY - timedelta(days=1))
    scheduled = send_digest(app, now=MONDAY)
    assert scheduled.status == "sent" and scheduled.posts == ("Old news",)
    add_post(app, "Fresh news", first_seen=MONDAY + timedelta(hours=1))
    manual = send_digest(app, manual=True, now=MONDAY + timedelta(hours=2))
    assert (manual.status, manual.recipients, manual.posts) == ("sent", 2, ("Fresh news",))
    assert manual.edition_id != scheduled.edition_id
    new_mails = transport.sent[1:]
    assert len(new_mails) == 1 and len(new_mails[0][1]) == 2
    text = new_mails[0][0].text
    assert "Fresh news" in text and "Old news" not in text
    # The schedule still sends once per period: this period's digest is already claimed.
    with pytest.raises(AlreadySentError):
        send_digest(app, now=MONDAY + timedelta(hours=3))


def test_manual_send_does_not_stop_the_next_scheduled_digest(app, transport) -> None:
    add_readers(app, 1)
    add_post(app, "By hand", first_seen=MONDAY - timedelta(days=2))
    assert send_digest(app, manual=True, now=MONDAY - timedelta(days=1)).status == "sent"
    add_post(app, "Later", first_seen=MONDAY - timedelta(hours=5))
    scheduled = send_digest(app, now=MONDAY)
    assert scheduled.status == "sent" and scheduled.posts == ("Later",)
    assert len(transport.sent) == 2 and "By hand" not in transport.sent[1][0].text


def test_manual_send_with_nothing_new_says_so_and_records_nothing(app, transport) -> None:
    add_readers(app, 2)
    add_post(app, "Only post", first_seen=MONDAY - timedelta(days=1))
    send_digest(app, now=MONDAY)
    again = send_digest(app, manual=True, now=MONDAY + timedelta(hours=1))
    assert again.status == "empty" and "nothing new" in (again.reason or "")
    assert again.failed == 0 and len(transport.sent) == 1
    with app.sessions() as s:
        assert len(list(s.scalars(select(Edition.id)))) == 1
    # The preview and the dry run say the same.
    assert preview(app, now=MONDAY + timedelta(hours=1)) is None
    dry = send_digest(app, manual=True, dry_run=True, now=MONDAY + timedelta(hours=1))
    assert dry.batches == 0 and "nothing new" in (dry.reason or "")


def test_dry_run_equals_what_the_send_then_does(app, transport) -> None:
    add_readers(app, 3)
    add_readers(app, 2, start=10, cadence=Cadence.DAILY)
    add_readers(app, 1, start=20, paused=True)
    add_post(app, "First title")
    add_post(app, "Second title")
    for cadence in (Cadence.WEEKLY, Cadence.DAILY):
        shown = preview(app, cadence=cadence)
        dry = send_digest(app, cadence=cadence, manual=True, dry_run=True)
        real = send_digest(app, cadence=cadence, manual=True)
        with app.sessions() as s:
            sent = s.get(Edition, real.edition_id)
            assert shown is not None and (sent.subject, len(sent.post_ids)) == \
                (shown.subject, shown.post_count)
        assert (dry.recipients, dry.batches, dry.posts) == \
            (real.recipients, real.batches, real.posts)
        assert dry.posts == ("First title", "Second title")
        lines = dry.describe().splitlines()
        assert lines[0] == (f"dry-run ({cadence.value}): would send 2 posts to "
                            f"{real.recipients} readers in 1 batch")
        assert lines[-2:] == ["  - First title", "  - Second title"]
        assert real.describe().splitlines()[-2:] == lines[-2:]
    assert len(transport.recipients) == 5  # 3 weekly + 2 daily, as the dry runs said


def test_dry_run_names_readers_who_already_have_some_posts(app, transport) -> None:
    add_readers(app, 2, cadence=Cadence.DAILY)
    add_post(app, "Seen daily")
    send_digest(app, cadence=Cadence.DAILY, manual=True)
    with transaction(app.sessions) as s:  # both daily readers switch to weekly
        s.execute(update(Subscriber).values(cadence=Cadence.WEEKLY))
    add_readers(app, 1, start=5)
    add_post(app, "Only new")
    dry = send_digest(app, manual=True, dry_run=True)
    assert dry.partial == ((2, ("Only new",)),)
    assert "of them, 2 readers already received some of these posts and will get only: " \
        "Only new" in dry.describe()
    before = len(transport.sent)
    real = send_digest(app, manual=True)
    assert (real.recipients, real.posts) == (dry.recipients, dry.posts) == \
        (3, ("Seen daily", "Only new"))
    got = {r.email: mail.text for mail, rs in transport.sent[before:] for r in rs}
    assert "Seen daily" in got["reader5@example.org"]
    for switched in ("reader0@example.org", "reader1@example.org"):
        assert "Only new" in got[switched] and "Seen daily" not in got[switched]


def _rows(app, edition_id: int) -> dict[int, DeliveryStatus]:
    with app.sessions() as s:
        return {r.subscriber_id: DeliveryStatus(r.status) for r in s.scalars(
            select(Delivery).where(Delivery.edition_id == edition_id))}


def test_resend_skips_readers_who_got_the_edition(app, transport) -> None:
    add_readers(app, 3)
    add_post(app, "The edition's post")
    first = send_digest(app)
    assert first.recipients == 3 and len(_rows(app, first.edition_id)) == 3
    with transaction(app.sessions) as s:  # the provider refused it for reader1 alone
        s.execute(update(Delivery).where(
            Delivery.edition_id == first.edition_id,
            Delivery.subscriber_id == min(_rows(app, first.edition_id)) + 1)
            .values(status=int(DeliveryStatus.REFUSED)))
    add_readers(app, 2, start=3)  # joined later
    add_readers(app, 1, start=9, cadence=Cadence.DAILY)  # not a weekly reader
    before = len(transport.recipients)
    again = resend_edition(app, first.edition_id)
    assert (again.status, again.recipients, again.sent, again.failed) == ("sent", 3, 1, 0)
    assert sorted(transport.recipients[before:]) == [
        "reader1@example.org", "reader3@example.org", "reader4@example.org"]
    with app.sessions() as s:
        ids = list(s.scalars(select(Batch.id).where(Batch.edition_id == first.edition_id)
                             .order_by(Batch.seq)))
    assert ids == [f"{first.edition_id}-1", f"{first.edition_id}-2"]
    assert set(_rows(app, first.edition_id).values()) == {DeliveryStatus.HANDED}
    # Everyone has it now: a second resend sends nothing and says why.
    done = resend_edition(app, first.edition_id)
    assert done.status == "empty" and "already received" in (done.reason or "")
    assert len(transport.recipients) == before + 3


def test_resend_to_one_reader(app, transport) -> None:
    add_readers(app, 2)
    add_post(app)
    first = send_digest(app)
    got = resend_edition(app, first.edition_id, to="Reader0@example.org")
    assert got.status == "empty" and "already received edition" in (got.reason or "")
    add_readers(app, 2, start=5)
    before = len(transport.recipients)
    only = resend_edition(app, first.edition_id, to="reader6@example.org")
    assert (only.status, only.recipients) == ("sent", 1)
    assert transport.recipients[before:] == ["reader6@example.org"]
    with pytest.raises(NoSuchEditionError):
        resend_edition(app, first.edition_id + 100)


def test_resend_refuses_when_the_record_cannot_tell_who_got_it(app, transport) -> None:
    from sqlalchemy import delete

    from digest.errors import EditionError

    add_readers(app, 2)
    add_post(app)
    first = send_digest(app)
    with transaction(app.sessions) as s:  # sent before readers were recorded one by one
        s.execute(delete(Delivery).where(Delivery.edition_id == first.edition_id))
    with pytest.raises(EditionError, match="unknown"):
        resend_edition(app, first.edition_id)
    with transaction(app.sessions) as s:  # older than the record is kept
        s.execute(update(Edition).where(Edition.id == first.edition_id)
                  .values(created_at=datetime.now(UTC) - timedelta(days=401)))
    with pytest.raises(EditionError, match="DIGEST_DELIVERY_RETENTION_DAYS"):
        resend_edition(app, first.edition_id)
    assert len(transport.recipients) == 2
