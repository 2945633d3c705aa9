"""Readers' mails off the request: the sign-up (with its confirmation mail) and the welcome.

A sign-up request must cost the same for an address we know and one we don't, or its timing
tells a stranger who reads the blog. So the request only checks the form and the rate limits
and hands the sign-up over; recording it and mailing the confirmation happen elsewhere:

- ``DIGEST_DISPATCH=inline`` (default, so ``digest serve`` works alone): after the answer is
  sent, in a small thread pool of the web process (``InlineJobs``). At most ``backlog`` jobs
  wait; past that every sign-up is answered 429 alike, so a flood cannot grow memory,
  and a welcome mail is skipped (the reader is subscribed already; it is a courtesy).
- ``DIGEST_DISPATCH=celery``: a Celery task on the workers (``CeleryJobs``); the request only
  puts a message on the broker.

Either way the work is ``signup.record`` and ``optin.send_welcome``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from starlette.background import BackgroundTasks

from digest.errors import RateLimitedError
from digest.readers import optin
from digest.readers.signup import SignupJob, record
from digest.runtime import App

__all__ = ["CeleryJobs", "InlineJobs", "ReaderJobs", "SendTask"]

log = logging.getLogger(__name__)

SIGNUP_TASK = "digest.tasks.signup_task"
WELCOME_TASK = "digest.tasks.welcome_task"
SendTask = Callable[..., Any]  # Celery.send_task(name, args=[...])


class ReaderJobs(Protocol):
    """Where a request's readers' mails go; ``after`` holds work that follows the answer."""

    def sign_up(self, job: SignupJob, *, after: BackgroundTasks) -> None: ...

    def welcome(self, subscriber_id: int, *, after: BackgroundTasks) -> None: ...

    def close(self) -> None: ...


class InlineJobs:
    """Runs the jobs in this process after the answer, on ``workers`` threads of its own."""

    def __init__(self, app: App, *, workers: int = 4, backlog: int = 10_000) -> None:
        self.app = app
        self.backlog = backlog
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="digest-mail")
        self._lock = threading.Lock()
        self._pending = 0

    def _reserve(self) -> None:
        with self._lock:
            if self._pending >= self.backlog:
                raise RateLimitedError(30)
            self._pending += 1

    async def _run(self, work: Callable[..., object], *args: Any) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(self._pool, work, *args)
        except Exception:  # the answer is sent already; the log is the only place left
            log.exception("readers' mail job %s failed", getattr(work, "__name__", work))
        finally:
            with self._lock:
                self._pending -= 1

    def sign_up(self, job: SignupJob, *, after: BackgroundTasks) -> None:
        self._reserve()
        after.add_task(self._run, record, self.app, job)

    def welcome(self, subscriber_id: int, *, after: BackgroundTasks) -> None:
        """Queue the welcome mail; with the queue full it is skipped (a courtesy, and the
        reader is subscribed already), never an error for the reader."""
        try:
            self._reserve()
        except RateLimitedError:
            log.warning("readers' mail queue is full (%d jobs); no welcome mail for "
                        "subscriber %s", self.backlog, subscriber_id)
            return
        after.add_task(self._run, optin.send_welcome, self.app, subscriber_id)

    def close(self) -> None:
        """Finish the queued jobs (a graceful stop still sends the confirmations)."""
        self._pool.shutdown(wait=True)


class CeleryJobs:
    """Puts each job on the broker for the Celery workers (``digest.tasks``).

    When the broker cannot take a message, the job runs in this process instead
    (``fallback``): the broker is a transport, and a sign-up must not fail because of it.
    """

    def __init__(self, send_task: SendTask, fallback: ReaderJobs | None = None) -> None:
        self._send_task = send_task
        self._fallback = fallback

    def _send(self, name: str, args: list[Any]) -> bool:
        try:
            self._send_task(name, args=args)
        except Exception as exc:  # kombu raises its own OperationalError and socket errors
            if self._fallback is None:
                raise
            log.warning("the Celery broker refused %s (%s); running it in the web process",
                        name, exc)
            return False
        return True

    def sign_up(self, job: SignupJob, *, after: BackgroundTasks) -> None:
        if not self._send(SIGNUP_TASK, job.as_args()) and self._fallback is not None:
            self._fallback.sign_up(job, after=after)

    def welcome(self, subscriber_id: int, *, after: BackgroundTasks) -> None:
        if not self._send(WELCOME_TASK, [subscriber_id]) and self._fallback is not None:
            self._fallback.welcome(subscriber_id, after=after)

    def close(self) -> None:
        """The broker has the messages; only the fallback's queue is finished."""
        if self._fallback is not None:
            self._fallback.close()
