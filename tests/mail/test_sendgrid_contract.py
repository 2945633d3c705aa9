"""Contract: real batches through the sendgrid library to Stoplight Prism serving SendGrid's spec.

Prism validates each request against ``tsg_mail_v3.json`` and answers 400 with an
``sl-violations`` header when it does not conform; our transport maps that to
PermanentDeliveryError, so a clean run means every request was accepted (202).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from digest.mail.message import OutgoingMail
from digest.mail.personalize import RecipientFactory
from digest.mail.transports.sendgrid import SendGridTransport, request_body
from tests.conftest import REPO, make_settings, unavailable
from tests.smtp_server import free_port

pytestmark = pytest.mark.timeout(180)


def _prism() -> Path:
    candidates = [os.environ.get("DIGEST_PRISM_BIN", ""),
                  str(REPO / "tools" / "node_modules" / ".bin" / "prism")]
    for c in candidates:
        if c and Path(c).exists():
            return Path(c)
    unavailable("Stoplight Prism is not installed: `cd tools && npm install "
                "@stoplight/prism-cli@5.14.2` (as .ci/run does), or set DIGEST_PRISM_BIN")
    raise AssertionError




@pytest.fixture(scope="module")
def prism_url(shared_dir: Path):
    spec = shared_dir / "sendgrid" / "tsg_mail_v3.json"
    if not spec.exists():
        unavailable(f"{spec} is absent")
    port = free_port()
    proc = subprocess.Popen([str(_prism()), "mock", "-h", "127.0.0.1", "-p", str(port),
                             "--errors", str(spec)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail("prism exited at start")
                time.sleep(0.3)
        else:
            pytest.fail("prism did not start in 60 s")
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


class _Recording(SendGridTransport):
    """Keeps each request's status and size, so the test can see every request."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.statuses: list[tuple[int, int]] = []

    def post(self, body):
        status = super().post(body)
        self.statuses.append((status, len(body["personalizations"])))
        return status


def _mail() -> OutgoingMail:
    return OutgoingMail(
        subject="Diplomatic Opinion: Russia-West Negotiations Start «Ç ğ ş» 读者",
        html="<p>Hello</p><a href='[%unsubscribe_url%]'>Unsubscribe</a>",
        text="Hello\nUnsubscribe: [%unsubscribe_url%]\nPreferences: [%preferences_url%]",
        from_email="digest@news.example.org", from_name="Diplomatic Opinion — Ünal",
        reply_to="editor@news.example.org",
        headers={"List-Id": "Diplomatic Opinion <digest.news.example.org>"},
        custom_args={"edition_id": "7", "batch_id": "7-1"}, categories=("digest",),
    )


@pytest.mark.parametrize("readers", [1, 999, 1000, 1001])
def test_prism_accepts_every_request(prism_url: str, tmp_path: Path, readers: int) -> None:
    settings = make_settings(tmp_path, unsubscribe_mailto="unsubscribe@news.example.org")
    make = RecipientFactory(settings)
    recipients = [make(i + 1, f"reader{i}@example.org", f"Zoë Çelik-Øster {i} 读者", f"k{i}")
                  for i in range(readers)]
    transport = _Recording(api_key="SG.test", host=prism_url, timeout=30)
    for start in range(0, readers, transport.max_batch):
        transport.send_batch(_mail(), recipients[start:start + transport.max_batch])
    expected = [min(1000, readers - s) for s in range(0, readers, 1000)]
    assert transport.statuses == [(202, n) for n in expected]
    body = request_body(_mail(), recipients[:1])
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert "List-Unsubscribe" in body["personalizations"][0]["headers"]


def test_prism_violation_is_a_permanent_error(prism_url: str) -> None:
    from digest.errors import PermanentDeliveryError

    transport = SendGridTransport(api_key="SG.test", host=prism_url, timeout=30)
    with pytest.raises(PermanentDeliveryError) as info:
        transport.post({"personalizations": [], "subject": "x"})
    assert info.value.status == 400 and "sl-violations" in str(info.value)
