"""Pausing a running send and resuming it: no batch is claimed while paused, batches in
flight finish, reconcile leaves a paused edition alone, and after the resume every reader
has the edition exactly once. SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from digest.delivery.batch import send_batch
from digest.delivery.dispatch import CeleryDispatch
from digest.delivery.ledger import claim_batch
from digest.delivery.pause import OPERATOR_REASON, pause_edition, resume_edition
from digest.delivery.progress import edition_progress
from digest.delivery.reconcile import reconcile
from digest.delivery.send import send_digest
from digest.errors import BrokerUnavailableError, EditionError, NoSuchEditionError
from digest.mail.message import OutgoingMail, Recipient
from digest.mail.transports.memory import MemoryTransport
from digest.store.models import Batch, BatchStatus, Edition, EditionStatus
from digest.store.sessions import transaction
from tests.delivery_helpers import add_post, add_readers

READERS = 10
SIZE = 2  # readers per batch: five batches


@pytest.fixture
def small(app):
    app.settings = app.settings.model_copy(update={"batch_size": SIZE})
    return app


def _queued(app, readers: int = READERS) -> tuple[int, list[str]]:
    """A send handed to (absent) workers: its edition and its batches, all pending."""
    add_post(app)
    add_readers(app, readers)
    queued: list[str] = []
    result = send_digest(app, queue=True, dispatch=queued.extend)
    return int(result.edition_id), queued


def _statuses(app, edition_id: int) -> dict[str, BatchStatus]:
    with app.sessions() as s:
        return {b.id: b.status for b in s.scalars(
            select(Batch).where(Batch.edition_id == edition_id))}


def _edition(app, edition_id: int) -> Edition:
    with app.sessions() as s:
        return s.get(Edition, edition_id)


def _once_each(transport: MemoryTransport, readers: int = READERS) -> None:
    got = Counter(transport.recipients)
    assert set(got) == {f"reader{i}@example.org" for i in range(readers)}
    assert set(got.values()) == {1}, "somebody got the edition twice"


def _now() -> datetime:
    return datetime.now(UTC)


def test_no_batch_is_claimed_while_paused_and_the_resume_sends_each_once(small, transport):
    edition_id, batches = _queued(small)
    assert send_batch(small, batches[0]).status == "sent"
    assert pause_edition(small, edition_id, reason=OPERATOR_REASON, now=_now()) is True
    assert pause_edition(small, edition_id, reason="again", now=_now()) is False  # idempotent
    assert _edition(small, edition_id).pause_reason == OPERATOR_REASON

    # A worker that gets a paused edition's batch leaves it pending and returns quietly.
    outcome = send_batch(small, batches[1])
    assert (outcome.status, outcome.retry_in) == ("paused", None)
    assert claim_batch(small, batches[2], _now()) is False
    with small.sessions() as s:
        assert s.get(Batch, batches[1]).attempts == 0  # refused, not counted as a try
    assert len(transport.sent) == 1
    assert list(_statuses(small, edition_id).values()).count(BatchStatus.PENDING) == 4

    handed: list[str] = []
    assert resume_edition(small, edition_id, now=_now(), dispatch=handed.extend) == 4
    assert handed == batches[1:]  # in order, each once
    assert resume_edition(small, edition_id, now=_now(), dispatch=handed.extend) == 0
    assert len(handed) == 4
    for batch_id in handed + handed:  # a duplicated message sends nothing twice
        send_batch(small, batch_id)
    _once_each(transport)
    edition = _edition(small, edition_id)
    assert edition.status is EditionStatus.SENT and edition.paused_at is None


def test_a_batch_in_flight_when_the_pause_lands_finishes(small):
    add_post(small)
    add_readers(small, READERS)
    queued: list[str] = []
    edition_id = int(send_digest(small, queue=True, dispatch=queued.extend).edition_id)

    class PausingMidRequest(MemoryTransport):
        def send_batch(self, mail: OutgoingMail, recipients: Sequence[Recipient]) -> None:
            pause_edition(small, edition_id, reason=OPERATOR_REASON, now=_now())
            super().send_batch(mail, recipients)

    slow = PausingMidRequest()
    assert send_batch(small, queued[0], transport=slow).status == "sent"
    assert send_batch(small, queued[1], transport=slow).status == "paused"
    assert len(slow.sent) == 1
    statuses = _statuses(small, edition_id)
    assert statuses[queued[0]] is BatchStatus.SENT
    assert all(statuses[b] is BatchStatus.PENDING for b in queued[1:])


def test_an_inline_send_stops_when_paused_and_says_so(small, transport):
    add_post(small)
    add_readers(small, READERS)
    edition: list[int] = []

    class PausingAfterTheFirst(MemoryTransport):
        def send_batch(self, mail: OutgoingMail, recipients: Sequence[Recipient]) -> None:
            super().send_batch(mail, recipients)
            if len(self.sent) == 1:
                edition.append(int(mail.custom_args["edition_id"]))
                pause_edition(small, edition[0], reason=OPERATOR_REASON, now=_now())

    inline = PausingAfterTheFirst()
    small.transport_factory = lambda: inline
    result = send_digest(small, manual=True)
    assert result.status == "paused"
    assert "paused by the operator" in result.reason and f"digest resume {edition[0]}" in \
        result.reason
    assert "paused" in result.describe()
    assert (result.sent, len(inline.sent)) == (1, 1)
    assert _edition(small, edition[0]).status is EditionStatus.SENDING

    def here(batch_ids: Sequence[str]) -> None:
        for batch_id in batch_ids:
            send_batch(small, batch_id, transport=inline)

    assert resume_edition(small, edition[0], now=_now(), dispatch=here) == 4
    _once_each(inline)
    assert _edition(small, edition[0]).status is EditionStatus.SENT


def test_reconcile_leaves_a_paused_edition_alone(small, transport):
    edition_id, batches = _queued(small)
    stale = small.settings.batch_stale_seconds + 60
    with transaction(small.sessions) as s:
        s.get(Edition, edition_id).created_at = _now() - timedelta(seconds=stale)
        lost = s.get(Batch, batches[0])  # a worker died holding it
        lost.status, lost.claimed_at = BatchStatus.SENDING, _now() - timedelta(seconds=stale)
    pause_edition(small, edition_id, reason=OPERATOR_REASON, now=_now())
    later = _now() + timedelta(hours=2)
    queued: list[str] = []
    report = reconcile(small, later, dispatch=queued.extend)
    assert (report.redriven, report.in_doubt, report.finished, queued) == ([], [], [], [])
    assert reconcile(small, later).redriven == []  # nor sent in-process
    assert transport.sent == []
    assert _statuses(small, edition_id)[batches[0]] is BatchStatus.SENDING

    # Every batch done while it is paused: still not closed, until the resume.
    with transaction(small.sessions) as s:
        for batch in s.scalars(select(Batch).where(Batch.edition_id == edition_id)):
            batch.status = BatchStatus.SENT
    assert reconcile(small, later).finished == []
    assert _edition(small, edition_id).status is EditionStatus.SENDING
    assert resume_edition(small, edition_id, now=_now(), dispatch=queued.extend) == 0
    assert queued == [] and _edition(small, edition_id).status is EditionStatus.SENT


def test_resume_with_the_broker_down_keeps_the_batches_for_reconcile(small, transport):
    edition_id, batches = _queued(small)
    pause_edition(small, edition_id, reason=OPERATOR_REASON, now=_now())

    def refused(*args: object, **kwargs: object) -> None:
        raise ConnectionRefusedError("Error 111 connecting to 127.0.0.1:6379")

    resumed_at = _now()
    with pytest.raises(BrokerUnavailableError):
        resume_edition(small, edition_id, now=resumed_at,
                       dispatch=CeleryDispatch(send_task=refused))
    assert _edition(small, edition_id).paused_at is None  # the resume itself is recorded
    queued: list[str] = []
    assert reconcile(small, resumed_at, dispatch=queued.extend).redriven == []  # just queued
    stale = resumed_at + timedelta(seconds=small.settings.batch_stale_seconds + 1)
    assert reconcile(small, stale, dispatch=queued.extend).redriven == batches
    for batch_id in queued:
        send_batch(small, batch_id)
    _once_each(transport)


def test_only_a_running_edition_can_be_paused_or_resumed(small, transport):
    with pytest.raises(NoSuchEditionError):
        pause_edition(small, 99, reason=OPERATOR_REASON, now=_now())
    with pytest.raises(NoSuchEditionError):
        resume_edition(small, 99, now=_now())
    add_post(small)
    add_readers(small, 3)
    sent = send_digest(small, manual=True)
    assert sent.status == "sent"
    with pytest.raises(EditionError, match="sent, not being sent"):
        pause_edition(small, int(sent.edition_id), reason=OPERATOR_REASON, now=_now())
    with pytest.raises(EditionError, match="nothing to resume"):
        resume_edition(small, int(sent.edition_id), now=_now())


def test_progress_counts_batches_and_readers(small, transport):
    edition_id, batches = _queued(small)
    send_batch(small, batches[0])
    send_batch(small, batches[1])
    pause_edition(small, edition_id, reason=OPERATOR_REASON, now=_now())
    progress = edition_progress(small, edition_id, _now() + timedelta(seconds=1))
    assert progress.batches == {"pending": 3, "sending": 0, "sent": 2, "failed": 0,
                                "in_doubt": 0}
    assert (progress.batches_total, progress.readers_planned,
            progress.readers_handed_over, progress.failures) == (5, READERS, 4, 0)
    assert progress.paused and progress.pause_reason == OPERATOR_REASON
    assert progress.readers_per_second > 0 and not progress.done
    resume_edition(small, edition_id, now=_now(), dispatch=lambda ids: [
        send_batch(small, b) for b in ids])
    done = edition_progress(small, edition_id, _now())
    assert (done.done, done.status, done.paused, done.pause_reason) == (True, "sent", False,
                                                                        None)
    assert done.readers_handed_over == READERS and done.finished_at is not None


def test_a_pause_racing_workers_loses_and_doubles_nobody(small, transport):
    readers = 60
    edition_id, batches = _queued(small, readers)
    work = list(batches)
    lock = threading.Lock()
    outcomes: Counter[str] = Counter()
    claimed_after: list[str] = []
    paused_at: list[datetime] = []

    def worker() -> None:
        while True:
            with lock:
                if not work:
                    return
                batch_id = work.pop(0)
            outcome = send_batch(small, batch_id)
            with lock:
                outcomes[outcome.status] += 1

    def pauser() -> None:
        while len(transport.sent) < 3:
            time.sleep(0.001)
        pause_edition(small, edition_id, reason=OPERATOR_REASON, now=_now())
        paused_at.append(_now())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    threads.append(threading.Thread(target=pauser))
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert outcomes["paused"] > 0, "the pause landed after every batch was claimed"
    with small.sessions() as s:
        rows = s.scalars(select(Batch).where(Batch.edition_id == edition_id)).all()
        claimed_after = [b.id for b in rows if b.claimed_at is not None
                         and b.claimed_at.replace(tzinfo=UTC) > paused_at[0]]
        left = [b.id for b in rows if b.status is BatchStatus.PENDING]
        assert all(b.status in (BatchStatus.SENT, BatchStatus.PENDING) for b in rows)
    assert claimed_after == []
    assert len(left) == outcomes["paused"]
    assert outcomes["sent"] + outcomes["paused"] == len(batches)
    handed: list[str] = []
    assert resume_edition(small, edition_id, now=_now(), dispatch=handed.extend) == len(left)
    work.extend(handed)
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    _once_each(transport, readers)
    assert _edition(small, edition_id).status is EditionStatus.SENT


def test_reader_counts_are_kept_while_counting_them_is_costly(small, transport, monkeypatch):
    from digest.delivery import record

    edition_id, batches = _queued(small)
    counted: list[int] = []
    real = record.counts

    def slow(session, edition):  # as if the edition had a million delivery rows
        counted.append(edition)
        time.sleep(0.05)
        return real(session, edition)

    monkeypatch.setattr(record, "counts", slow)
    first = edition_progress(small, edition_id, _now())
    send_batch(small, batches[0])
    second = edition_progress(small, edition_id, _now())
    assert len(counted) == 1  # 0.05 s to count: kept for 0.5 s
    assert second.batches["sent"] == 1  # the ledger is read every time
    assert (second.readers_handed_over, second.readers_counted_at) == \
        (0, first.readers_counted_at)
    time.sleep(0.6)
    assert edition_progress(small, edition_id, _now()).readers_handed_over == 2
    assert len(counted) == 2
    for batch_id in batches[1:]:
        send_batch(small, batch_id)
    final = edition_progress(small, edition_id, _now())  # finished: counted at once
    assert (final.done, final.readers_handed_over, len(counted)) == (True, READERS, 3)
