"""A local SendGrid-compatible mail/send server, and real Celery worker processes.

The sink answers ``POST /v3/mail/send`` with 202 and records every personalization's
recipient; it can answer 429/500 for a fraction of requests, and it can hold one request
(unrecorded) while a test kills the worker that sent it, which is "mid-send" made exact:
the provider never accepted that request. With ``accept_held`` the held request is accepted
first (recorded, and reported through ``on_accept``) and only its answer never comes: the
provider took it, but the worker died before it learnt so. The fan-out benchmark measures
against it, and the fan-out tests use it through ``tests.sendgrid_sink``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

__all__ = ["Sink", "celery_workers", "running_sink", "worker_env"]

REPO = Path(__file__).resolve().parent.parent


class Sink:
    """State shared with the request handler."""

    def __init__(self, fail_rate: float = 0.0, seed: int = 7) -> None:
        self.fail_rate = fail_rate
        self.rng = random.Random(seed)
        self.received: Counter[str] = Counter()
        self.requests = 0
        self.failures = 0
        self.lock = threading.Lock()
        self.hold_at: int | None = None  # hold the request with this sequence number
        self.held = threading.Event()
        self.release = threading.Event()
        self.held_port: int | None = None
        self.accept_held = False  # accept the held request before holding its answer
        # Called with each accepted request's personalizations (e.g. to post webhook events).
        self.on_accept: Callable[[list[dict[str, object]]], None] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _handler(sink: Sink) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _answer(self, status: int, headers: dict[str, str] | None = None) -> None:
            body = b"" if status == 202 else b'{"errors":[{"message":"try later"}]}'
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _accept(self, raw: bytes) -> None:
            personalizations = json.loads(raw)["personalizations"]
            with sink.lock:
                for p in personalizations:
                    sink.received[p["to"][0]["email"]] += 1
            if sink.on_accept is not None:
                sink.on_accept(personalizations)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path != "/v3/mail/send" or not self.headers.get("Authorization"):
                self._answer(401 if self.path == "/v3/mail/send" else 404)
                return
            with sink.lock:
                sink.requests += 1
                seq = sink.requests
                fail = sink.rng.random() < sink.fail_rate
            if seq == sink.hold_at:
                if sink.accept_held:
                    self._accept(raw)
                sink.held_port = self.client_address[1]
                sink.held.set()
                sink.release.wait(30)
                self.close_connection = True
                return  # no answer: the sender was killed while waiting
            if fail:
                with sink.lock:
                    sink.failures += 1
                if sink.rng.random() < 0.5:
                    self._answer(429, {"Retry-After": "1"})
                else:
                    self._answer(500)
                return
            self._accept(raw)
            self._answer(202)

    return Handler


@contextmanager
def running_sink(fail_rate: float = 0.0) -> Iterator[Sink]:
    """A sink on a free 127.0.0.1 port, shut down on exit."""
    sink = Sink(fail_rate)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(sink))
    server.daemon_threads = True
    sink.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        sink.release.set()
        server.shutdown()
        server.server_close()


def worker_env(database_url: str, broker_url: str, sink_url: str, **extra: str) -> dict[str, str]:
    """The environment a worker subprocess needs to send through the sink."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env.update({
        "DIGEST_DATABASE_URL": database_url,
        "DIGEST_BROKER_URL": broker_url,
        "DIGEST_MAIL_BACKEND": "sendgrid",
        "DIGEST_SENDGRID_HOST": sink_url,
        "SENDGRID_API_KEY": "test",
        "DIGEST_SECRET_KEY": "test-secret",
        "DIGEST_BASE_URL": "https://news.example.org",
        "DIGEST_FROM_EMAIL": "digest@news.example.org",
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


@contextmanager
def celery_workers(count: int, env: dict[str, str], log_dir: Path,
                   pool: str = "solo") -> Iterator[list[subprocess.Popen[bytes]]]:
    """``count`` real ``celery -A worker worker`` processes; every one is killed on exit."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for i in range(count):
            log = open(log_dir / f"worker{i}.log", "wb")  # noqa: SIM115
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "worker", "worker", "-P", pool,
                 "-c", "1", "-n", f"w{i}-{os.getpid()}@%h", "--without-gossip",
                 "--without-mingle", "--without-heartbeat", "--loglevel=WARNING"],
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            ))
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
