"""Sign-up answers cost the same for every address; the mails follow the answer.

- new and known addresses get the same answer, and the confirmation still arrives (raw bytes);
- the answer never waits for the mail provider (a real uvicorn, a slow transport);
- with DIGEST_DISPATCH=celery the request only puts a task on the broker;
- a flood of one address sends one mail and never locks its reader out.
Storage cases run on SQLite and PostgreSQL (the ``app`` fixture).
"""

from __future__ import annotations

import email
import email.policy
import re
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from digest.bootstrap import build
from digest.mail.transports.outbox import OutboxTransport
from digest.readers.addresses import email_hash
from digest.readers.optin import RESEND_AFTER, send_welcome, subscribe
from digest.readers.ratelimit import RateLimiter
from digest.readers.roster import add
from digest.readers.signup import SignupJob, record
from digest.store import migrate as schema
from digest.store.models import Subscriber, SubscriberStatus
from digest.store.sessions import transaction
from digest.web.app import create_app
from digest.web.jobs import CeleryJobs, InlineJobs
from tests.conftest import REDIS_TEST_URL, make_settings
from tests.smtp_server import free_port

CONFIRM = re.compile(rb"/confirm/([A-Za-z0-9_.\-]+)")


@pytest.fixture
def outbox(app, tmp_path) -> Path:
    """The app mails into tmp_path/mails as .eml files (raw bytes, as SMTP would carry)."""
    directory = tmp_path / "mails"
    app.transport_factory = lambda: OutboxTransport(directory, "news.example.org")
    return directory


@pytest.fixture
def limiter():
    made = RateLimiter(REDIS_TEST_URL, prefix=f"test:{uuid.uuid4().hex}")  # default limits
    yield made
    made.close()


def _mails(directory: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted(directory.glob("*.eml"))] if directory.is_dir() else []


def _link(raw: bytes) -> str:
    """The confirmation token in a mail's text part (decoded from quoted-printable)."""
    text = email.message_from_bytes(raw, policy=email.policy.default).get_body(("plain",))
    return CONFIRM.search(text.get_content().encode()).group(1).decode()


def _to(directory: Path) -> list[bytes]:
    return [re.search(rb"^To: (.*)$", m, re.M).group(1).strip() for m in _mails(directory)]


def _answer(client: TestClient, address: str, as_json: bool) -> tuple[int, str, tuple[str, ...]]:
    response = (client.post("/subscribe", json={"email": address}) if as_json
                else client.post("/subscribe", data={"email": address}))
    names = tuple(sorted(k for k in response.headers if k not in ("date", "content-length")))
    return response.status_code, response.text.replace(address, "ADDRESS"), names


def test_new_and_known_addresses_get_one_answer_and_the_mail_follows(app, outbox,
                                                                        limiter) -> None:
    add(app, "known@example.org")
    subscribe(app, "pending@example.org", ip=None, source="web")
    gone = add(app, "gone@example.org")
    with transaction(app.sessions) as s:
        s.execute(update(Subscriber).where(Subscriber.id == gone.id)
                  .values(status=SubscriberStatus.UNSUBSCRIBED))
    with TestClient(create_app(app, limiter=limiter)) as client:
        for as_json in (True, False):
            answers = {_answer(client, f"{who}@example.org", as_json)
                       for who in ("new" if as_json else "new2", "known", "pending", "gone")}
            assert len(answers) == 1, answers
            assert next(iter(answers))[0] == 200
    recipients = _to(outbox)
    assert sorted(recipients) == [b"gone@example.org", b"new2@example.org",
                                  b"new@example.org", b"pending@example.org"]  # pending: the
    # first mail of the setup; the repeat within RESEND_AFTER sends nothing
    mail = next(m for m in _mails(outbox) if b"To: new@example.org" in m)
    assert _link(mail)


def test_deeply_nested_json_is_a_400(app, limiter) -> None:
    with TestClient(create_app(app, limiter=limiter), raise_server_exceptions=False) as client:
        body = '{"email": ' + "[" * 30_000 + "]" * 30_000 + "}"  # within the size limit
        response = client.post("/subscribe", content=body,
                               headers={"Content-Type": "application/json"})
    assert response.status_code == 400


class SlowTransport:
    """A mail provider that takes a second per call, like a slow API."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send_batch(self, mail, recipients) -> None:
        time.sleep(1.0)
        self.sent.extend(r.email for r in recipients)

    def close(self) -> None:
        pass




def test_the_answer_does_not_wait_for_the_mail_provider(tmp_path, limiter) -> None:
    port = free_port()
    slow = SlowTransport()
    app = build(make_settings(tmp_path), lambda: slow)
    schema.upgrade(app.engine)
    server = uvicorn.Server(uvicorn.Config(create_app(app, limiter=limiter), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
            time.sleep(0.05)
        started = time.monotonic()
        response = httpx.post(f"http://127.0.0.1:{port}/subscribe",
                              json={"email": "reader@example.org"}, timeout=10)
        answered = time.monotonic() - started
        assert response.status_code == 200
        assert answered < 0.5, f"the answer took {answered:.2f} s: it waited for the mail"
        while not slow.sent and time.monotonic() < started + 10:
            time.sleep(0.05)
        assert slow.sent == ["reader@example.org"]
    finally:
        server.should_exit = True
        thread.join(10)
        app.engine.dispose()


def test_celery_dispatch_only_puts_tasks_on_the_broker(app, transport, limiter) -> None:
    queued: list[tuple[str, list]] = []
    jobs = CeleryJobs(lambda name, args: queued.append((name, args)))
    with TestClient(create_app(app, limiter=limiter, jobs=jobs)) as client:
        assert client.post("/subscribe", json={"email": "r@example.org"}).status_code == 200
        assert transport.sent == [] and queued[0][0] == "digest.tasks.signup_task"
        with app.sessions() as s:
            assert s.scalar(select(func.count()).select_from(Subscriber)) == 0
        record(app, SignupJob.from_args(*queued[0][1]))  # what the worker runs
        assert transport.recipients == ["r@example.org"]
        token = CONFIRM.search(transport.sent[0][0].text.encode()).group(1).decode()
        assert client.post(f"/confirm/{token}").status_code == 200
    assert queued[1][0] == "digest.tasks.welcome_task"
    assert send_welcome(app, *queued[1][1]) is True
    assert transport.recipients == ["r@example.org", "r@example.org"]


def test_a_flood_of_one_address_sends_one_mail_and_never_locks_it_out(app, outbox,
                                                                       limiter) -> None:
    victim = "victim@example.org"
    with TestClient(create_app(app, limiter=limiter)) as client:
        codes = [client.post("/subscribe", data={"email": victim}).status_code
                 for _ in range(15)]
        assert codes == [200] * 15
        assert _to(outbox) == [victim.encode()]
        first = _mails(outbox)[0]
        # Later (past the resend window) the reader asks for themselves: it works.
        with transaction(app.sessions) as s:
            row = s.scalars(select(Subscriber).where(
                Subscriber.email_hash == email_hash(victim, app.address_key))).one()
            row.confirmation_sent_at -= RESEND_AFTER + timedelta(minutes=1)
        assert client.post("/subscribe", data={"email": victim}).status_code == 200
        assert _to(outbox) == [victim.encode()] * 2
        token = _link(next(m for m in _mails(outbox) if m != first))
        assert "You are subscribed" in client.post(f"/confirm/{token}").text
    with app.sessions() as s:
        status = s.scalar(select(Subscriber.status).where(
            Subscriber.email_hash == email_hash(victim, app.address_key)))
    assert status is SubscriberStatus.ACTIVE
    assert len(_mails(outbox)) == 3  # two confirmations and the welcome


def test_with_the_broker_down_the_signup_still_mails(app, transport, limiter) -> None:
    def broker_down(name, args):
        raise ConnectionRefusedError("redis is down")

    jobs = CeleryJobs(broker_down, fallback=InlineJobs(app, workers=1))
    with TestClient(create_app(app, limiter=limiter, jobs=jobs)) as client:
        assert client.post("/subscribe", json={"email": "r@example.org"}).status_code == 200
    assert transport.recipients == ["r@example.org"]


def test_a_full_mail_queue_answers_every_address_alike(app, transport, limiter) -> None:
    add(app, "known@example.org")
    with TestClient(create_app(app, limiter=limiter,
                               jobs=InlineJobs(app, backlog=0))) as client:
        answers = {client.post("/subscribe", json={"email": who}).status_code
                   for who in ("new@example.org", "known@example.org")}
    assert answers == {429} and transport.sent == []
