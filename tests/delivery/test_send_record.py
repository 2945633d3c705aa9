"""The send path writes the per-reader record and reads it back: nobody gets a post twice.

Each reader's mail is checked as the bytes they would receive (``build_mime``), on SQLite
and PostgreSQL.
"""

from __future__ import annotations

import email
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email.policy import default

import pytest
from sqlalchemy import select, update

from digest.delivery.batch import send_batch, send_batch_until_done
from digest.delivery.record import counts, prune_expired
from digest.delivery.send import send_digest
from digest.errors import TransientDeliveryError
from digest.mail.message import build_mime
from digest.mail.transports.smtp import SmtpTransport
from digest.store.models import Cadence, Delivery, DeliveryStatus, Subscriber, utcnow
from digest.store.sessions import transaction
from tests.delivery_helpers import add_post, add_readers
from tests.smtp_server import free_port, serving

aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller")


def _mails(transport) -> dict[str, list[str]]:
    """Each address -> the text of every digest it received, decoded from the raw bytes."""
    got: dict[str, list[str]] = {}
    for mail, recipients in transport.sent:
        for recipient in recipients:
            raw = build_mime(mail, recipient, "news.example.org").as_bytes()
            message = email.message_from_bytes(raw, policy=default)
            body = message.get_body(("plain",))
            assert body is not None
            got.setdefault(recipient.email, []).append(
                f"Subject: {message['Subject']}\n{body.get_content()}")
    return got


def _switch_to_daily(app, *emails: str) -> None:
    with transaction(app.sessions) as s:
        s.execute(update(Subscriber).where(Subscriber.email.in_(emails))
                  .values(cadence=Cadence.DAILY))


def _rows(app, edition_id: int) -> dict[int, DeliveryStatus]:
    with app.sessions() as s:
        return {int(sid): DeliveryStatus(st) for sid, st in s.execute(
            select(Delivery.subscriber_id, Delivery.status)
            .where(Delivery.edition_id == edition_id))}


@pytest.mark.parametrize("new_post", [False, True])
def test_weekly_reader_switched_to_daily_gets_no_post_twice(app, transport, new_post) -> None:
    add_post(app, "Alpha talks open")
    add_post(app, "Bravo treaty signed")
    add_readers(app, 2)  # reader0, reader1: weekly
    add_readers(app, 1, start=2, cadence=Cadence.DAILY)  # reader2: daily from the start
    assert send_digest(app, cadence=Cadence.WEEKLY).status == "sent"
    weekly = _mails(transport)
    assert set(weekly) == {"reader0@example.org", "reader1@example.org"}
    assert "Alpha talks open" in weekly["reader0@example.org"][0]
    transport.sent.clear()
    _switch_to_daily(app, "reader0@example.org", "reader1@example.org")
    if new_post:
        add_post(app, "Charlie summit ends")

    daily = send_digest(app, cadence=Cadence.DAILY)

    got = _mails(transport)
    newcomer = got["reader2@example.org"]  # never had them: the whole edition
    assert len(newcomer) == 1
    assert "Alpha talks open" in newcomer[0] and "Bravo treaty signed" in newcomer[0]
    if not new_post:  # every post already received in the weekly digest: no mail at all
        assert set(got) == {"reader2@example.org"}
        assert _rows(app, daily.edition_id) == {1: DeliveryStatus.ALREADY_RECEIVED,
                                                2: DeliveryStatus.ALREADY_RECEIVED,
                                                3: DeliveryStatus.HANDED}
        return
    for switched in ("reader0@example.org", "reader1@example.org"):
        (mail,) = got[switched]
        assert "Charlie summit ends" in mail
        assert "Alpha talks open" not in mail and "Bravo treaty signed" not in mail
    assert "Charlie summit ends" in newcomer[0]
    assert _rows(app, daily.edition_id) == {1: DeliveryStatus.HANDED, 2: DeliveryStatus.HANDED,
                                            3: DeliveryStatus.HANDED}


def _mixed_daily_batch(app, transport) -> str:
    """A daily batch whose readers 1, 3, 5 need the whole edition and 0, 2, 4 (weekly readers
    who switched) only its new post: two groups, out of id order. Returns the batch id."""
    add_post(app, "Alpha talks open")
    for i in range(6):
        add_readers(app, 1, start=i, cadence=Cadence.WEEKLY if i % 2 == 0 else Cadence.DAILY)
    send_digest(app, cadence=Cadence.WEEKLY)
    transport.sent.clear()
    add_post(app, "Bravo treaty signed")
    _switch_to_daily(app, *(f"reader{i}@example.org" for i in (0, 2, 4)))
    result = send_digest(app, cadence=Cadence.DAILY, queue=True, dispatch=lambda ids: None)
    return f"{result.edition_id}-1"


def _exactly_once(app, transport, batch_id: str) -> None:
    got = _mails(transport)
    assert sorted(got) == [f"reader{i}@example.org" for i in range(6)]
    assert all(len(mails) == 1 for mails in got.values()), got
    for i in range(6):
        (mail,) = got[f"reader{i}@example.org"]
        assert "Bravo treaty signed" in mail
        assert ("Alpha talks open" in mail) is (i % 2 == 1)
    edition_id = int(batch_id.partition("-")[0])
    assert _rows(app, edition_id) == {i: DeliveryStatus.HANDED for i in range(1, 7)}


def test_retry_after_a_transient_failure_mid_batch_mails_nobody_twice(app, transport) -> None:
    batch_id = _mixed_daily_batch(app, transport)
    calls = []

    class FailsSecondRequest:
        max_batch = 1000

        def send_batch(self, mail, recipients):
            calls.append([r.email for r in recipients])
            if len(calls) == 2:
                raise TransientDeliveryError("SendGrid 503")
            return transport.send_batch(mail, recipients)

        def close(self) -> None:
            pass

    outcome = send_batch_until_done(app, batch_id, transport=FailsSecondRequest())
    assert outcome.status == "sent" and len(calls) == 3
    _exactly_once(app, transport, batch_id)


class Killed(BaseException):
    """The worker process dying (SIGKILL, a time limit) between two requests."""


def test_batch_reclaimed_after_going_stale_mails_nobody_twice(app, transport) -> None:
    batch_id = _mixed_daily_batch(app, transport)

    class DiesBeforeSecondRequest:
        max_batch = 1000

        def send_batch(self, mail, recipients):
            if transport.sent:  # the first request went through and was recorded
                raise Killed
            return transport.send_batch(mail, recipients)

        def close(self) -> None:
            pass

    start = utcnow()
    with pytest.raises(Killed):
        send_batch(app, batch_id, transport=DiesBeforeSecondRequest(), now=start)
    later = start + timedelta(seconds=app.settings.batch_stale_seconds + 1)
    assert send_batch(app, batch_id, transport=transport, now=later).status == "sent"
    _exactly_once(app, transport, batch_id)


@dataclass
class RefusingServer:
    """A local SMTP server that refuses reader1 alone (550) and, once, answers reader2's
    message with a 451 (a transient failure mid-batch)."""

    url: str = ""
    delivered: list[str] = field(default_factory=list)
    deferred_once: bool = False

    async def handle_RCPT(self, server, session, envelope, address, options):
        if address.startswith("reader1@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if envelope.rcpt_tos == ["reader2@example.org"] and not self.deferred_once:
            self.deferred_once = True
            return "451 4.3.0 try again later"
        self.delivered.extend(envelope.rcpt_tos)
        return "250 OK"


@pytest.fixture
def refusing_smtp() -> Iterator[RefusingServer]:
    port = free_port()
    with serving(RefusingServer(f"smtp://127.0.0.1:{port}"), port) as handler:
        yield handler


def test_an_smtp_refusal_is_a_refused_row_for_that_reader_only(app, refusing_smtp) -> None:
    add_post(app)
    add_readers(app, 4)
    app.transport = lambda: SmtpTransport.from_url(refusing_smtp.url, timeout=5)  # type: ignore[method-assign]
    result = send_digest(app)  # reader1 refused; the 451 at reader2 is retried after backoff
    assert result.status == "sent"
    assert sorted(refusing_smtp.delivered) == [f"reader{i}@example.org" for i in (0, 2, 3)]
    assert _rows(app, result.edition_id) == {1: DeliveryStatus.HANDED,
                                             2: DeliveryStatus.REFUSED,
                                             3: DeliveryStatus.HANDED,
                                             4: DeliveryStatus.HANDED}


def test_a_batch_failing_for_good_records_its_readers_as_failed(app, transport) -> None:
    from digest.errors import PermanentDeliveryError

    add_post(app)
    add_readers(app, 3)
    transport.fail_with = [PermanentDeliveryError("SendGrid 401 Unauthorized")]
    result = send_digest(app)
    assert transport.recipients == []
    assert _rows(app, result.edition_id) == {i: DeliveryStatus.FAILED for i in (1, 2, 3)}


def test_old_records_are_pruned_after_the_retention_days(app, transport) -> None:
    add_post(app)
    add_readers(app, 2)
    edition_id = send_digest(app).edition_id
    later = utcnow() + timedelta(days=401)
    app.settings = app.settings.model_copy(update={"delivery_retention_days": 0})
    assert prune_expired(app, later) == 0  # 0 keeps them forever
    app.settings = app.settings.model_copy(update={"delivery_retention_days": 402})
    assert prune_expired(app, later) == 0
    app.settings = app.settings.model_copy(update={"delivery_retention_days": 400})
    assert prune_expired(app, later) == 2
    with app.sessions() as s:
        assert counts(s, edition_id) == {}
