"""Sentry: off without DIGEST_SENTRY_DSN; with it, no reader's address leaves the process.

The scrubber is tried on an event shaped like the ones sentry-sdk builds (a FastAPI request, a
logged error with breadcrumbs, an exception with local variables); then a real process reports
an error to a local stand-in for Sentry (127.0.0.1) and the envelope it receives is read.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from digest import sentry
from tests.conftest import REPO, make_settings

ADDRESS = "alice.smith@example.org"
MASKED = "a***@example.org"


def _event() -> dict:
    return {
        "event_id": "fc6d8c0c43fc4630ad850ee518f1b9d0",
        "level": "error",
        "logentry": {"message": "confirmation mail to %s failed", "params": [ADDRESS],
                     "formatted": f"confirmation mail to {ADDRESS} failed"},
        "message": f"confirmation mail to {ADDRESS} failed",
        "exception": {"values": [{
            "type": "PermanentDeliveryError",
            "value": f"SendGrid 400 Bad Request: {ADDRESS} does not contain a valid address",
            "stacktrace": {"frames": [{
                "function": "_send", "module": "digest.readers.optin", "lineno": 91,
                "vars": {"recipient": f"Recipient(email='{ADDRESS}', name='Alice')",
                         "addresses": [ADDRESS, "bob@example.net"],
                         "by_email": {ADDRESS: 17}},
            }]},
        }]},
        "breadcrumbs": {"values": [
            {"category": "digest.readers.optin", "level": "info",
             "message": f"sign-up of {ADDRESS}", "data": {"email": ADDRESS}},
            {"category": "httplib", "type": "http",
             "data": {"url": "https://api.sendgrid.com/v3/mail/send", "method": "POST",
                      "status_code": 400}},
        ]},
        "request": {"url": "https://news.example.org/subscribe", "method": "POST",
                    "query_string": f"email={ADDRESS}",
                    "data": {"email": ADDRESS, "website": ""},
                    "headers": {"Content-Type": "application/json", "Referer":
                                f"https://blog.example.org/?who={ADDRESS}"}},
        "extra": {"sys.argv": ["digest", "readers", "add", ADDRESS]},
        "contexts": {"runtime": {"name": "CPython", "version": "3.11.7"}},
    }


def test_the_scrubber_masks_every_address_and_keeps_the_rest() -> None:
    event = _event()
    scrubbed = sentry.scrub_event(event, {})
    text = json.dumps(scrubbed)
    assert json.dumps(event).count(ADDRESS) == 13
    assert ADDRESS not in text and "bob@example.net" not in text
    assert text.count("***@example.org") == 13  # "email=alice..." masks as "e***@..."
    assert "b***@example.net" in text
    frame = scrubbed["exception"]["values"][0]["stacktrace"]["frames"][0]
    assert frame["vars"]["by_email"] == {MASKED: 17}  # keys too, values kept
    assert frame["lineno"] == 91 and frame["function"] == "_send"
    assert scrubbed["breadcrumbs"]["values"][1] == event["breadcrumbs"]["values"][1]
    assert scrubbed["request"]["url"] == "https://news.example.org/subscribe"
    assert scrubbed["contexts"] == event["contexts"]


def test_off_without_a_dsn(tmp_path: Path) -> None:
    assert sentry.configure(make_settings(tmp_path)) is False
    assert sentry.configure(make_settings(tmp_path, sentry_dsn="  ")) is False
    assert sentry.configure(None) is False


_REPORTER = f"""
import logging
from digest import logs, sentry
from digest.config import load_settings

settings = load_settings()
logs.configure(settings)
assert sentry.configure(settings)
assert sentry.configure(settings)  # a second call changes nothing
import sentry_sdk

def send(address):
    raise ValueError(f"the provider refused {{address}}")

logging.getLogger("digest.readers.optin").info("sign-up of %s", "{ADDRESS}")
try:
    send("{ADDRESS}")
except ValueError:
    logging.getLogger("digest.readers.optin").exception("confirmation mail failed")
sentry_sdk.flush(10)
"""


def test_a_real_report_reaches_sentry_without_addresses(tmp_path: Path) -> None:
    received: list[bytes] = []
    got = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Content-Encoding") == "gzip":
                raw = gzip.decompress(raw)
            received.append(raw)
            got.set()
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO),
               "DIGEST_SENTRY_DSN": f"http://publickey@127.0.0.1:{server.server_port}/1",
               "DIGEST_SENTRY_ENVIRONMENT": "test", "DIGEST_DATABASE_URL":
               f"sqlite:///{tmp_path / 'digest.db'}"}
        done = subprocess.run([sys.executable, "-c", _REPORTER], cwd=tmp_path, env=env,
                              capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr.decode()
        assert got.wait(10), "nothing reached the local Sentry"
    finally:
        server.shutdown()
        server.server_close()
    envelope = b"\n".join(received).decode()
    assert "the provider refused" in envelope  # the error itself is there
    assert '"environment":"test"' in envelope.replace(" ", "")
    assert ADDRESS not in envelope
    assert MASKED in envelope
