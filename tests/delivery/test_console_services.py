"""The console's read services on SQLite and PostgreSQL: the next digest as a reader sees it,
the editions' history page by page, and one edition's content and outcome."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from digest.delivery.history import edition_detail, edition_history
from digest.delivery.nextdigest import next_digest, preheader_of
from digest.delivery.send import send_digest
from digest.errors import NoSuchEditionError
from digest.store.models import (
    Batch,
    BatchStatus,
    Cadence,
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
)
from digest.store.sessions import transaction
from tests.delivery_helpers import add_post, add_readers

NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def test_next_digest_is_the_mail_a_reader_gets_with_nobodys_links(app, transport) -> None:
    add_readers(app, 2)
    add_post(app, "Talks resume in Geneva", first_seen=NOW - timedelta(hours=3))
    add_post(app, "A second look", first_seen=NOW - timedelta(hours=2))
    shown = next_digest(app, Cadence.WEEKLY, now=NOW)
    assert shown.mail is not None and shown.reason is None
    assert set(shown.posts) == {"Talks resume in Geneva", "A second look"}
    # The same subject and body the send then hands to the transport.
    send_digest(app, manual=True, now=NOW)
    sent = transport.sent[0][0]
    assert shown.mail.subject == sent.subject
    assert "Talks resume in Geneva" in shown.mail.html and "A second look" in shown.mail.text
    assert "[%" not in shown.mail.html and "[%" not in shown.mail.text  # no placeholder left
    assert "/unsubscribe/" not in shown.mail.html  # no reader's token: the sign-up page
    assert shown.mail.preheader  # the inbox snippet, from the mail itself
    assert shown.mail.preheader in " ".join(shown.mail.html.split())


def test_next_digest_with_nothing_new_says_why(app) -> None:
    shown = next_digest(app, Cadence.DAILY, now=NOW)
    assert shown.mail is None and shown.posts == ()
    assert shown.reason and "no new posts" in shown.reason


def test_preheader_is_read_as_plain_text() -> None:
    page = '<p>x</p><div class="preheader" style="display:none">Also: A &amp; B</div>'
    assert preheader_of(page) == "Also: A & B"
    assert preheader_of("<p>none</p>") == ""


def _sent_editions(app, count: int) -> list[int]:
    ids = []
    for i in range(count):
        add_post(app, f"Post {i}", first_seen=NOW + timedelta(hours=i))
        result = send_digest(app, manual=True, now=NOW + timedelta(hours=i, minutes=30))
        assert result.status == "sent"
        ids.append(int(result.edition_id))
    return ids


def test_history_pages_newest_first_with_ledger_counts(app) -> None:
    add_readers(app, 3)
    ids = _sent_editions(app, 5)
    first = edition_history(app, limit=2)
    assert [e.id for e in first.editions] == [ids[4], ids[3]]
    assert first.next_before == ids[3]
    second = edition_history(app, before=first.next_before, limit=2)
    assert [e.id for e in second.editions] == [ids[2], ids[1]]
    last = edition_history(app, before=second.next_before, limit=2)
    assert [e.id for e in last.editions] == [ids[0]] and last.next_before is None
    row = first.editions[0]
    assert (row.status, row.recipients, row.subject) == ("sent", 3, "Diplomatic Opinion: Post 4")
    assert row.ledger.of(BatchStatus.SENT) == 1 and row.ledger.readers_sent == 3
    assert row.ledger.open == 0


def test_edition_detail_shows_content_and_outcome_by_status(app) -> None:
    add_readers(app, 4)
    (edition_id,) = _sent_editions(app, 1)
    with transaction(app.sessions) as s:
        s.execute(update(Delivery).where(Delivery.subscriber_id == 1)
                  .values(status=int(DeliveryStatus.BOUNCED)))
        s.execute(update(Delivery).where(Delivery.subscriber_id == 2)
                  .values(status=int(DeliveryStatus.DELIVERED)))
    detail = edition_detail(app, edition_id)
    assert detail.posts == ("Post 0",)
    assert detail.mail is not None and "Post 0" in detail.mail.html
    assert detail.readers.by_status == {"handed": 2, "delivered": 1, "bounced": 1}
    assert (detail.readers.planned, detail.readers.bounced, detail.not_received) == (4, 1, 1)
    assert detail.can_resend and detail.errors == []


def test_edition_detail_shows_batch_errors_and_no_resend_while_sending(app) -> None:
    add_readers(app, 2)
    (edition_id,) = _sent_editions(app, 1)
    with transaction(app.sessions) as s:
        s.execute(update(Batch).values(status=BatchStatus.FAILED, error="550 no such list"))
    detail = edition_detail(app, edition_id)
    assert detail.errors == ["550 no such list"]
    assert detail.summary.ledger.of(BatchStatus.FAILED) == 1
    with transaction(app.sessions) as s:
        s.execute(update(Edition).values(status=EditionStatus.SENDING))
    assert not edition_detail(app, edition_id).can_resend
    with pytest.raises(NoSuchEditionError):
        edition_detail(app, edition_id + 100)
