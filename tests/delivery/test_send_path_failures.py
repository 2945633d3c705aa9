"""Failures on the send path leave every reader recorded once: nobody is mailed twice by a
retry or a resend, and no batch stays stuck. SQLite and PostgreSQL."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from sqlalchemy import event, select, text

from digest.delivery import batch as batch_module
from digest.delivery import record
from digest.delivery.batch import send_batch, send_batch_until_done
from digest.delivery.send import send_digest
from digest.mail.transports.sendgrid import SendGridTransport
from digest.mail.transports.smtp import SmtpTransport
from digest.store.models import (
    Batch,
    BatchStatus,
    Cadence,
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    utcnow,
)
from digest.store.sessions import transaction
from tests.delivery_helpers import add_post, add_readers
from tests.smtp_server import free_port, serving

aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller")


def _rows(app, edition_id: int) -> dict[int, DeliveryStatus]:
    with app.sessions() as s:
        return {int(sid): DeliveryStatus(st) for sid, st in s.execute(
            select(Delivery.subscriber_id, Delivery.status)
            .where(Delivery.edition_id == edition_id))}


def _batch(app, batch_id: str) -> Batch:
    with app.sessions() as s:
        found = s.get(Batch, batch_id)
        s.expunge_all()
        return found


def _queued(app, readers: int) -> tuple[int, str]:
    add_post(app)
    add_readers(app, readers)
    result = send_digest(app, queue=True, dispatch=lambda ids: None)
    return result.edition_id, f"{result.edition_id}-1"


@dataclass
class Server:
    """A local SMTP server: reader1's mailbox is full (552 at DATA); after ``mail_limit``
    messages it refuses the sender for good (553 at MAIL FROM)."""

    url: str = ""
    delivered: list[str] = field(default_factory=list)
    mail_limit: int = 100

    async def handle_MAIL(self, server, session, envelope, address, options):
        if len(self.delivered) >= self.mail_limit:
            return "553 5.7.1 sender blocked"
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if envelope.rcpt_tos == ["reader1@example.org"]:
            return "552 5.2.2 mailbox full"
        self.delivered.extend(envelope.rcpt_tos)
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[Server]:
    port = free_port()
    with serving(Server(f"smtp://127.0.0.1:{port}"), port) as handler:
        yield handler


def test_a_full_mailbox_at_data_refuses_that_reader_and_the_rest_go_out(app, smtp_server):
    app.transport = lambda: SmtpTransport.from_url(smtp_server.url, timeout=5)  # type: ignore[method-assign]
    add_post(app)
    add_readers(app, 4)
    result = send_digest(app)
    assert result.status == "sent"
    assert sorted(smtp_server.delivered) == [f"reader{i}@example.org" for i in (0, 2, 3)]
    assert _rows(app, result.edition_id) == {1: DeliveryStatus.HANDED,
                                             2: DeliveryStatus.REFUSED,
                                             3: DeliveryStatus.HANDED,
                                             4: DeliveryStatus.HANDED}


def test_a_batch_failing_for_good_mid_session_records_who_was_already_accepted(
        app, smtp_server):
    smtp_server.mail_limit = 2  # reader0 and reader2 go out, reader1 is refused at DATA
    app.transport = lambda: SmtpTransport.from_url(smtp_server.url, timeout=5)  # type: ignore[method-assign]
    add_post(app)
    add_readers(app, 5)
    result = send_digest(app)
    assert sorted(smtp_server.delivered) == ["reader0@example.org", "reader2@example.org"]
    # A resend picks up FAILED readers only: those accepted are not mailed again.
    assert _rows(app, result.edition_id) == {1: DeliveryStatus.HANDED,
                                             2: DeliveryStatus.REFUSED,
                                             3: DeliveryStatus.HANDED,
                                             4: DeliveryStatus.FAILED,
                                             5: DeliveryStatus.FAILED}


class DroppingApi:
    """A local "SendGrid" that reads each request, then drops the connection unanswered
    (the request may have been accepted); counts the requests."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.host = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.requests = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                data = b""
                try:
                    while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < 50:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                except OSError:
                    pass
                self.requests += 1


@pytest.fixture
def dropping_api() -> Iterator[DroppingApi]:
    api = DroppingApi()
    yield api
    api.sock.close()


def _sendgrid(app, host: str, webhook: bool) -> None:
    app.settings = app.settings.model_copy(update={
        "mail_backend": "sendgrid", "in_doubt_minutes": 15,
        "sendgrid_webhook_public_key": "a-verification-key" if webhook else None})
    app.transport = lambda: SendGridTransport("k", host, timeout=2)  # type: ignore[method-assign]


def test_a_dropped_sendgrid_request_waits_in_doubt_for_the_events(app, dropping_api):
    _sendgrid(app, dropping_api.host, webhook=True)
    edition_id, batch_id = _queued(app, 3)
    start = utcnow()
    outcome = send_batch(app, batch_id, now=start)
    assert outcome.status == "in_doubt" and outcome.retry_in is None
    held = _batch(app, batch_id)
    assert held.status is BatchStatus.IN_DOUBT and held.claimed_at == start
    # A redelivered task message, even once stale, leaves it to reconcile: one request only.
    stale = start + timedelta(seconds=app.settings.batch_stale_seconds + 1)
    assert send_batch(app, batch_id).status == "skipped"
    assert send_batch(app, batch_id, now=stale).status == "skipped"
    assert dropping_api.requests == 1
    assert _rows(app, edition_id) == {}
    with app.sessions() as s:
        assert s.get(Edition, edition_id).status is EditionStatus.SENDING


def test_a_sendgrid_request_never_sent_is_retried_at_once(app):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    _sendgrid(app, closed, webhook=True)
    _, batch_id = _queued(app, 2)
    outcome = send_batch(app, batch_id)
    assert outcome.status == "pending" and outcome.retry_in is not None


def test_without_events_a_dropped_sendgrid_request_is_retried_as_before(app, dropping_api):
    _sendgrid(app, dropping_api.host, webhook=False)
    _, batch_id = _queued(app, 2)
    outcome = send_batch(app, batch_id)
    assert outcome.status == "pending" and outcome.retry_in is not None


def test_a_webhook_row_written_during_the_record_does_not_lose_the_request(app, monkeypatch):
    with transaction(app.sessions) as s:
        edition = Edition(key="weekly:2026-11-23", cadence=Cadence.WEEKLY,
                          status=EditionStatus.SENDING)
        s.add(edition)
        s.flush()
        edition_id = edition.id
    at = utcnow()
    with transaction(app.sessions) as s:  # "processed" for reader 3 lands first
        record.apply_event(s, edition_id, 3, DeliveryStatus.PROCESSED, at)
    # ... after the record looked for existing rows (the race, made certain here)
    monkeypatch.setattr(record, "already_handed", lambda *a, **k: set())
    if app.engine.dialect.name == "postgresql":  # the COPY clashes first, then the fallback
        monkeypatch.setattr(record, "_copy", _clash)
    with transaction(app.sessions) as s:
        record.record_handed(s, edition_id, [1, 2, 3, 4], at)
    assert _rows(app, edition_id) == {1: DeliveryStatus.HANDED, 2: DeliveryStatus.HANDED,
                                      3: DeliveryStatus.PROCESSED, 4: DeliveryStatus.HANDED}


def _clash(*args, **kwargs) -> None:
    from sqlalchemy.exc import IntegrityError

    raise IntegrityError("COPY", {}, Exception("duplicate key"))


def test_a_batch_that_cannot_be_planned_fails_after_its_attempts(app, monkeypatch):
    edition_id, batch_id = _queued(app, 2)

    def broken(*args, **kwargs):
        raise RuntimeError("posts table unreadable")

    monkeypatch.setattr(batch_module, "still_new", broken)
    outcome = send_batch_until_done(app, batch_id)
    assert outcome.status == "failed" and "posts table unreadable" in (outcome.error or "")
    assert outcome.attempts == app.settings.max_send_attempts
    assert _batch(app, batch_id).status is BatchStatus.FAILED
    assert _rows(app, edition_id) == {1: DeliveryStatus.FAILED, 2: DeliveryStatus.FAILED}


def test_pruning_deletes_by_edition_in_chunks_without_scanning_the_table(app):
    old, new = [], []
    for key, created, ids in (("weekly:2025-01-06", utcnow() - timedelta(days=500), old),
                              ("weekly:2026-11-23", utcnow(), new)):
        with transaction(app.sessions) as s:
            edition = Edition(key=key, cadence=Cadence.WEEKLY, status=EditionStatus.SENT,
                              created_at=created)
            s.add(edition)
            s.flush()
            ids.append(edition.id)
            # The old edition was resent recently: its rows' own times are new.
            record.record_handed(s, edition.id, list(range(1, 8)), utcnow())
    statements: list[tuple[str, object]] = []

    def seen(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith("DELETE"):
            statements.append((statement, parameters))

    event.listen(app.engine, "before_cursor_execute", seen)
    try:
        app.settings = app.settings.model_copy(update={"delivery_retention_days": 400})
        assert record.prune_expired(app, chunk=3) == 7
    finally:
        event.remove(app.engine, "before_cursor_execute", seen)
    assert _rows(app, old[0]) == {} and len(_rows(app, new[0])) == 7
    assert len(statements) >= 3  # 7 rows in chunks of 3
    with app.engine.connect() as conn:
        for statement, parameters in statements:
            if app.engine.dialect.name == "postgresql":
                conn.execute(text("SET enable_seqscan = off"))
                plan = "\n".join(r[0] for r in conn.exec_driver_sql(
                    f"EXPLAIN {statement}", parameters))  # type: ignore[arg-type]
                assert "Seq Scan on deliveries" not in plan, plan
            else:
                plan = "\n".join(str(r[-1]) for r in conn.exec_driver_sql(
                    f"EXPLAIN QUERY PLAN {statement}", parameters))  # type: ignore[arg-type]
                assert "SCAN deliveries" not in plan, plan
