"""Editions and fan-out through a MemoryTransport, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from digest.delivery.batch import send_batch
from digest.delivery.editions import latest_sent_edition, preview
from digest.delivery.reconcile import reconcile
from digest.delivery.send import send_digest
from digest.errors import AlreadySentError, PermanentDeliveryError, TransientDeliveryError
from digest.mail.render import PLACEHOLDERS
from digest.store.models import Batch, BatchStatus, Cadence, Edition, EditionStatus
from digest.store.sessions import transaction
from digest.tokens import Purpose
from tests.delivery_helpers import add_post, add_readers


def _batches(app) -> list[Batch]:
    with app.sessions() as s:
        return list(s.scalars(select(Batch).order_by(Batch.edition_id, Batch.seq)))


def test_send_claims_period_once(app, transport) -> None:
    add_post(app)
    add_readers(app, 3)
    result = send_digest(app)
    assert (result.status, result.recipients, result.sent, result.failed) == ("sent", 3, 1, 0)
    assert sorted(transport.recipients) == [f"reader{i}@example.org" for i in range(3)]
    mail, recipients = transport.sent[0]
    assert mail.custom_args["edition_id"] == str(result.edition_id)
    assert mail.custom_args["batch_id"] == f"{result.edition_id}-1"
    unsub = recipients[0].substitutions[PLACEHOLDERS["unsubscribe_url"]]
    token = unsub.rsplit("/", 1)[1]
    reader = app.tokens.read(Purpose.UNSUBSCRIBE, token)
    assert reader.subscriber_id == recipients[0].subscriber_id
    assert recipients[0].headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    add_post(app, "Another post")  # new post, same week: still the same period
    with pytest.raises(AlreadySentError):
        send_digest(app)
    assert len(transport.sent) == 1
    with app.sessions() as s:
        assert latest_sent_edition(s, Cadence.WEEKLY).id == result.edition_id


def test_a_send_by_hand_claims_its_own_key_and_only_new_posts(app, transport) -> None:
    add_post(app)
    add_readers(app, 2)
    first = send_digest(app)
    nothing = send_digest(app, manual=True)  # the same posts are not sent again
    assert (nothing.edition_id, nothing.status) == (None, "empty")
    add_post(app, "Another post")
    again = send_digest(app, manual=True)
    assert again.edition_id != first.edition_id and again.status == "sent"
    assert again.posts == ("Another post",) and len(transport.recipients) == 4
    with app.sessions() as s:
        keys = list(s.scalars(select(Edition.key).order_by(Edition.id)))
    assert keys[1] == f"weekly:manual:after-{first.edition_id}"


def test_no_new_posts_records_empty_edition_and_sends_nothing(app, transport) -> None:
    add_readers(app, 2)
    result = send_digest(app)
    assert result.status == "empty" and "no new posts" in (result.reason or "")
    assert transport.sent == []
    assert preview(app) is None
    # A post arriving later in the same period is not blocked by the empty claim.
    add_post(app)
    assert send_digest(app).status == "sent"
    assert len(transport.recipients) == 2


def test_only_new_announced_posts_and_eligible_readers(app, transport) -> None:
    add_post(app, "Backlog", announce=False)
    add_post(app, "Fresh")
    add_readers(app, 2)
    add_readers(app, 1, start=10, paused=True)
    add_readers(app, 1, start=20, cadence=Cadence.DAILY)
    rendered = preview(app)
    assert rendered is not None and "Fresh" in rendered.html and "Backlog" not in rendered.html
    send_digest(app)
    assert sorted(transport.recipients) == ["reader0@example.org", "reader1@example.org"]
    daily = send_digest(app, cadence=Cadence.DAILY)
    assert daily.recipients == 1 and transport.recipients[-1] == "reader20@example.org"


def test_dry_run_and_test_copy_claim_nothing(app, transport) -> None:
    add_post(app)
    add_readers(app, 5)
    dry = send_digest(app, dry_run=True)
    assert (dry.status, dry.recipients, dry.batches) == ("dry-run", 5, 1)
    test = send_digest(app, to="editor@example.org")
    assert test.status == "test" and transport.recipients == ["editor@example.org"]
    assert transport.sent[0][0].subject.startswith("[Test] ")
    with app.sessions() as s:
        assert s.scalar(select(Edition.id)) is None
    assert send_digest(app).recipients == 5


def test_1001_readers_make_two_batches(app, transport) -> None:
    add_post(app)
    add_readers(app, 1001)
    result = send_digest(app)
    assert (result.batches, result.sent, result.recipients) == (2, 2, 1001)
    assert [len(r) for _, r in transport.sent] == [1000, 1]
    assert len(set(transport.recipients)) == 1001
    assert [b.id for b in _batches(app)] == [f"{result.edition_id}-1", f"{result.edition_id}-2"]


def test_transient_then_success(sqlite_app, transport) -> None:
    add_post(sqlite_app)
    add_readers(sqlite_app, 3)
    transport.fail_with = [TransientDeliveryError("429", 429, retry_after=1.0),
                           TransientDeliveryError("503", 503)]
    result = send_digest(sqlite_app)
    assert result.status == "sent" and len(transport.recipients) == 3
    (batch,) = _batches(sqlite_app)
    assert batch.status is BatchStatus.SENT and batch.attempts == 3 and batch.error is None


def test_permanent_failure_is_recorded(sqlite_app, transport) -> None:
    add_post(sqlite_app)
    add_readers(sqlite_app, 3)
    transport.fail_with = [PermanentDeliveryError("SendGrid 400: bad from address", 400)]
    result = send_digest(sqlite_app)
    assert (result.status, result.failed) == ("failed", 1)
    (batch,) = _batches(sqlite_app)
    assert batch.status is BatchStatus.FAILED and "bad from address" in (batch.error or "")
    assert batch.attempts == 1 and transport.sent == []


def _two_attempts_app(tmp_path, transport, slept: list[float]):
    """A migrated SQLite app that gives a batch two attempts, with one post and one reader."""
    from digest.bootstrap import build
    from digest.store import migrate as schema
    from tests.conftest import make_settings

    app = build(make_settings(tmp_path, max_send_attempts=2), lambda: transport,
                sleep=slept.append)
    schema.upgrade(app.engine)
    add_post(app)
    add_readers(app, 1)
    return app


def test_gives_up_after_max_attempts(tmp_path, transport) -> None:
    slept: list[float] = []
    app = _two_attempts_app(tmp_path, transport, slept)
    transport.fail_with = [TransientDeliveryError("500", 500)] * 2
    assert send_digest(app).failed == 1
    (batch,) = _batches(app)
    assert batch.status is BatchStatus.FAILED and "gave up after 2 attempts" in batch.error
    assert len(slept) == 1 and slept[0] > 0  # one backoff between the two attempts


def test_reconcile_redrives_stale_batch(app, transport) -> None:
    add_post(app)
    add_readers(app, 5)
    result = send_digest(app, queue=True, dispatch=lambda ids: None)  # the queue was lost
    assert result.status == "queued" and transport.sent == []
    # One batch was claimed by a worker that died mid-send.
    claimed = datetime.now(UTC) - timedelta(minutes=1)
    with transaction(app.sessions) as s:
        s.execute(update(Batch).values(status=BatchStatus.SENDING, claimed_at=claimed))
    assert send_batch(app, f"{result.edition_id}-1").status == "skipped"  # still live
    assert reconcile(app).redriven == []
    report = reconcile(app, now=datetime.now(UTC) + timedelta(hours=1))
    assert report.redriven == [f"{result.edition_id}-1"]
    assert sorted(transport.recipients) == [f"reader{i}@example.org" for i in range(5)]
    final = reconcile(app)
    assert final.redriven == []
    with app.sessions() as s:
        assert s.get(Edition, result.edition_id).status is EditionStatus.SENT


def test_live_claim_is_not_sent_twice(sqlite_app, transport) -> None:
    add_post(sqlite_app)
    add_readers(sqlite_app, 2)
    result = send_digest(sqlite_app, queue=True, dispatch=lambda ids: None)
    batch_id = f"{result.edition_id}-1"
    assert send_batch(sqlite_app, batch_id).status == "sent"
    assert send_batch(sqlite_app, batch_id).status == "skipped"
    assert reconcile(sqlite_app).redriven == []
    assert len(transport.recipients) == 2


class StrictTransport:
    """Like SendGrid: a request over ``max_batch`` recipients is refused outright."""

    def __init__(self, inner, max_batch: int = 1000) -> None:
        self.inner, self.max_batch = inner, max_batch

    def send_batch(self, mail, recipients):
        if len(recipients) > self.max_batch:
            raise PermanentDeliveryError(f"{len(recipients)} recipients exceed {self.max_batch}")
        return self.inner.send_batch(mail, recipients)

    def close(self) -> None:
        pass


def test_reader_confirming_mid_send_does_not_overflow_a_batch(sqlite_app, transport) -> None:
    from digest.store.models import Subscriber, SubscriberStatus

    add_post(sqlite_app)
    add_readers(sqlite_app, 5)
    add_readers(sqlite_app, 1, start=5, status=SubscriberStatus.PENDING)
    add_readers(sqlite_app, 4, start=6)
    strict = StrictTransport(transport, max_batch=9)
    sqlite_app.transport = lambda: strict  # type: ignore[method-assign]
    result = send_digest(sqlite_app, queue=True, dispatch=lambda ids: None)
    assert result.batches == 1 and result.recipients == 9
    with transaction(sqlite_app.sessions) as s:  # reader5 confirms while the batch waits
        s.execute(update(Subscriber).where(Subscriber.email == "reader5@example.org")
                  .values(status=SubscriberStatus.ACTIVE))
    outcome = send_batch(sqlite_app, f"{result.edition_id}-1", transport=strict)
    assert outcome.status == "sent"
    assert sorted(transport.recipients) == sorted(f"reader{i}@example.org" for i in range(10))
    assert all(len(r) <= 9 for _, r in transport.sent)


def test_partial_batch_is_resumed_not_resent(sqlite_app, transport) -> None:
    from digest.mail.transports.base import BatchInterrupted

    add_post(sqlite_app)
    add_readers(sqlite_app, 5)

    class DropsAfterTwo:
        max_batch = 1000

        def __init__(self) -> None:
            self.calls = 0

        def send_batch(self, mail, recipients):
            self.calls += 1
            if self.calls == 1:  # the server accepted two readers, then went away
                transport.send_batch(mail, recipients[:2])
                raise BatchInterrupted("SMTP connection lost", accepted=2)
            return transport.send_batch(mail, recipients)

        def close(self) -> None:
            pass

    flaky = DropsAfterTwo()
    sqlite_app.transport = lambda: flaky  # type: ignore[method-assign]
    result = send_digest(sqlite_app)
    assert result.status == "sent"
    assert sorted(transport.recipients) == [f"reader{i}@example.org" for i in range(5)]


def test_refused_readers_are_recorded_and_shown(sqlite_app, transport) -> None:
    from digest.delivery.stats import stats

    add_post(sqlite_app)
    add_readers(sqlite_app, 3)

    class RefusesOne:
        max_batch = 1000

        def send_batch(self, mail, recipients):
            transport.send_batch(mail, recipients[1:])
            return [f"{recipients[0].email}: 550 5.1.1 no such user"]

        def close(self) -> None:
            pass

    refusing = RefusesOne()
    sqlite_app.transport = lambda: refusing  # type: ignore[method-assign]
    result = send_digest(sqlite_app)
    assert result.status == "sent"
    (batch,) = _batches(sqlite_app)
    assert batch.status is BatchStatus.SENT and "no such user" in (batch.error or "")
    assert any("no such user" in e for e in stats(sqlite_app).editions[0].errors)


def test_unexpected_transport_error_does_not_leave_batch_stuck(tmp_path, transport) -> None:
    slept: list[float] = []
    app = _two_attempts_app(tmp_path, transport, slept)
    transport.fail_with = [RuntimeError("unmapped library error")] * 2
    result = send_digest(app)
    assert result.failed == 1 and result.status == "failed"
    (batch,) = _batches(app)
    assert batch.status is BatchStatus.FAILED and "unmapped library error" in (batch.error or "")


def _edition_posts(app, edition_id: int) -> list[int]:
    with app.sessions() as s:
        return sorted(s.get(Edition, edition_id).post_ids)


def test_posts_of_a_failed_edition_go_in_the_next_one(app, transport) -> None:
    week = timedelta(days=7)
    monday = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)  # 09:00 Istanbul
    add_readers(app, 2)
    add_post(app, "One", first_seen=monday - timedelta(days=1))
    send_digest(app, now=monday)
    two = add_post(app, "Two", first_seen=monday + timedelta(days=1))
    transport.fail_with = [PermanentDeliveryError("SendGrid 401: bad key", 401)]
    assert send_digest(app, now=monday + week).status == "failed"
    three = add_post(app, "Three", first_seen=monday + week + timedelta(days=1))
    third = send_digest(app, now=monday + 2 * week)
    assert third.status == "sent"
    assert _edition_posts(app, third.edition_id) == [two, three]


def test_post_committed_during_a_claim_is_in_the_next_edition(app, transport) -> None:
    monday = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    add_readers(app, 1)
    add_post(app, "One", first_seen=monday - timedelta(days=1))
    first = send_digest(app, now=monday)
    # A poll that stamped its post a moment before the claim committed it just after.
    late = add_post(app, "Late", first_seen=monday - timedelta(seconds=2))
    second = send_digest(app, now=monday + timedelta(days=7))
    assert second.status == "sent" and _edition_posts(app, second.edition_id) == [late]
    assert late not in _edition_posts(app, first.edition_id)


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)  # needs concurrent writers
def test_concurrent_instant_claims_cannot_send_a_post_twice(app, transport) -> None:
    import threading

    from digest.delivery.editions import claim_edition

    add_readers(app, 1, cadence=Cadence.INSTANT)
    add_post(app, "One")
    outcome: list[object] = []

    def second_beat() -> None:
        try:
            outcome.append(claim_edition(app, Cadence.INSTANT))
        except AlreadySentError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=second_beat)

    def plan(session, edition) -> None:
        # While this claim is uncommitted, a poll stores a post and a second beat claims.
        add_post(app, "Two")
        thread.start()
        thread.join(1.5)

    first = claim_edition(app, Cadence.INSTANT, plan=plan)
    thread.join(10)
    assert first is not None and first.post_ids
    assert len(outcome) == 1
    # The second beat waits for the first claim, then either collides on its key or claims
    # only what the first left out.
    second = outcome[0]
    assert isinstance(second, AlreadySentError) or not set(first.post_ids) & set(
        second.post_ids or []), second


def test_sending_before_anyone_confirmed_keeps_the_posts_for_later(app, transport) -> None:
    waiting = add_post(app, "Waiting")
    early = send_digest(app)
    assert early.status == "empty" and "no confirmed readers" in (early.reason or "")
    assert transport.sent == []
    add_readers(app, 2)
    later = send_digest(app)
    assert later.status == "sent" and later.recipients == 2
    assert _edition_posts(app, later.edition_id) == [waiting]
    assert len(transport.recipients) == 2


def test_test_copy_checks_the_address_and_gives_strangers_no_token(app, transport) -> None:
    from digest.errors import InvalidEmailError

    add_post(app)
    with pytest.raises(InvalidEmailError):
        send_digest(app, to="not an address")
    assert transport.sent == []
    result = send_digest(app, to="Editor@Example.org")
    assert result.describe() == "test copy sent to Editor@example.org"
    mail, [recipient] = transport.sent[0]
    assert recipient.substitutions == {} and "List-Unsubscribe" not in recipient.headers
    assert "/unsubscribe/" not in mail.html.replace("[%unsubscribe_url%]", "")


def test_date_line_tells_when_the_posts_appeared_not_the_schedule_week(app, transport) -> None:
    from digest.store.models import Post

    friday = datetime(2026, 3, 6, 12, 0, tzinfo=UTC)  # a manual send after Monday's digest
    post_id = add_post(app, "Midweek", first_seen=friday - timedelta(hours=1))
    with transaction(app.sessions) as s:
        s.get(Post, post_id).published_at = datetime(2026, 3, 5, 9, 0, tzinfo=UTC)
    add_readers(app, 1)
    send_digest(app, now=friday)
    mail, _ = transport.sent[0]
    assert "5 March 2026" in mail.text
    assert "23 February" not in mail.text and "2 March" not in mail.text


def test_first_edition_of_a_cadence_holds_recent_posts_not_the_whole_history(app,
                                                                              transport) -> None:
    now = datetime.now(UTC)
    add_post(app, "Last month", first_seen=now - timedelta(days=30))
    recent = add_post(app, "Yesterday", first_seen=now - timedelta(days=1))
    add_readers(app, 1, cadence=Cadence.DAILY)
    result = send_digest(app, cadence=Cadence.DAILY)
    assert result.status == "sent"
    assert _edition_posts(app, result.edition_id) == [recent]


def test_reconcile_queues_a_waiting_batch_once_per_stale_period(app, transport) -> None:
    add_post(app)
    add_readers(app, 3)
    result = send_digest(app, queue=True, dispatch=lambda ids: None)  # the queue was lost
    queued: list[str] = []
    later = datetime.now(UTC) + timedelta(hours=1)
    assert reconcile(app, now=later, dispatch=queued.extend).redriven == [
        f"{result.edition_id}-1"]
    # The message is waiting in the broker: the next passes do not queue it again ...
    assert reconcile(app, now=later + timedelta(minutes=1), dispatch=queued.extend).redriven == []
    # ... until it has waited a whole stale period without a worker taking it.
    stale = later + timedelta(seconds=app.settings.batch_stale_seconds + 1)
    assert reconcile(app, now=stale, dispatch=queued.extend).redriven == [
        f"{result.edition_id}-1"]
    assert transport.sent == []
