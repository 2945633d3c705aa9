"""Readiness: can this deployment do its work right now (``GET /readyz``)?

Four things must hold: the database answers and is at the newest migration (else every query may
fail on a missing column), the broker answers (Redis or RabbitMQ: queued batches reach no worker
otherwise), Redis answers (rate limits, the heartbeat; the broker itself when that is Redis),
and beat ticked within DIGEST_BEAT_STALE_MINUTES (else no digest goes out and nobody notices).
Each failing check says what is wrong and what to do. The checks run side by side, each in a
daemon thread, and whatever has not answered within ``CHECK_TIMEOUT`` is reported as not
answering: a probe never hangs on a database or a Redis that does not reply.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import redis
from kombu.connection import Connection
from sqlalchemy.exc import SQLAlchemyError

from digest.delivery.heartbeat import HEARTBEAT_TTL, connect, last_tick
from digest.runtime import App
from digest.store.migrate import database_revision, head_revision, known_revision

__all__ = ["CHECK_TIMEOUT", "Check", "Readiness", "readiness"]

T = TypeVar("T")
CHECK_TIMEOUT = 3.0  # seconds for all checks together; probes usually allow 5 to 10
_START_BEAT = ("is `celery -A worker beat` running (exactly one), with at least one "
               "`celery -A worker worker` to run its minute task?")


@dataclass(frozen=True)
class Check:
    """One check's outcome: ``ok`` None means it could not be judged (what it needs is down)."""

    ok: bool | None
    detail: str  # what was found; for a failure, what is wrong and what to do


@dataclass(frozen=True)
class Readiness:
    checks: dict[str, Check]

    @property
    def ready(self) -> bool:
        return all(check.ok for check in self.checks.values())

    @property
    def problems(self) -> dict[str, str]:
        """The failing checks, each with what to do (a check not judged is not blamed)."""
        return {name: c.detail for name, c in self.checks.items() if c.ok is False}


_UNJUDGED = Check(None, "not checked: beat's heartbeat is kept in Redis")


def readiness(app: App, *, now: datetime | None = None,
              timeout: float = CHECK_TIMEOUT) -> Readiness:
    """Check the database, the broker, Redis and beat's heartbeat, together, within
    ``timeout``."""
    now = now or datetime.now(UTC)
    database = _start(lambda: _database(app), _broken)
    broker = _start(lambda: _broker(app, timeout), _broken)
    redis_and_beat = _start(lambda: _redis_and_beat(app, now),
                            lambda exc: (_broken(exc), _UNJUDGED))
    every: list[Future[Any]] = [database, broker, redis_and_beat]
    wait(every, timeout=timeout)
    late = f"did not answer within {timeout:g} s"
    db_check = database.result() if database.done() else Check(
        False, f"the database {_db_where(app)} {late}: is it running and reachable? "
               "Check DIGEST_DATABASE_URL")
    broker_check = broker.result() if broker.done() else Check(
        False, f"the broker at {_where(app.settings.broker_url)} {late}: is it running and "
               "reachable? Check DIGEST_BROKER_URL")
    if redis_and_beat.done():
        redis_check, beat_check = redis_and_beat.result()
    else:
        redis_check = Check(False, f"Redis at {_where(app.settings.rate_limit_url)} {late}: is "
                                   "it running and reachable? Check DIGEST_REDIS_URL")
        beat_check = _UNJUDGED
    return Readiness({"database": db_check, "broker": broker_check, "redis": redis_check,
                      "beat": beat_check})


def _start(check: Callable[[], T], failed: Callable[[Exception], T]) -> Future[T]:
    """Run ``check`` in a daemon thread (one that hangs cannot keep the process alive);
    an unforeseen error becomes ``failed(error)``, a failed check rather than a 500."""
    future: Future[T] = Future()

    def run() -> None:
        try:
            future.set_result(check())
        except Exception as exc:
            future.set_result(failed(exc))

    threading.Thread(target=run, name="readyz", daemon=True).start()
    return future


def _broken(exc: Exception) -> Check:
    return Check(False, f"the check itself failed: {exc!r}")


def _db_where(app: App) -> str:
    url = app.engine.url
    if url.get_backend_name() == "sqlite":
        return f"{url.database}"
    return f"at {url.host}:{url.port or 5432}"


def _where(url: str) -> str:
    """Host and port of a Redis or RabbitMQ URL (never its password)."""
    parts = urlsplit(url)
    default = 5672 if parts.scheme.startswith(("amqp", "pyamqp")) else 6379
    return f"{parts.hostname}:{parts.port or default}" if parts.hostname else parts.path


def _broker(app: App, timeout: float) -> Check:
    """One connection to the broker, as a worker or ``send_task`` would open it."""
    url = app.settings.broker_url
    kind = "RabbitMQ" if app.settings.broker_transport == "amqp" else "Redis"
    connection = Connection(url, connect_timeout=min(timeout, 2.0))  # type: ignore[no-untyped-call]
    try:
        connection.ensure_connection(  # type: ignore[no-untyped-call]
            max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
    except Exception as exc:  # kombu's OperationalError, amqp's AccessRefused, socket errors
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        return Check(False, f"cannot reach the broker ({kind}) at {_where(url)}: {reason}. "
                            "Is it running, and is DIGEST_BROKER_URL right? Queued batches "
                            "wait in the ledger until it is back")
    finally:
        connection.release()  # type: ignore[no-untyped-call]
    return Check(True, f"reachable ({kind})")


def _database(app: App) -> Check:
    head = head_revision()
    try:
        with app.engine.connect() as conn:
            current = database_revision(conn)
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return Check(False, f"cannot reach the database {_db_where(app)}: {reason}: is it "
                            "running, and is DIGEST_DATABASE_URL right?")
    if current == head:
        return Check(True, f"reachable, at the newest migration ({head})")
    if current is None:
        return Check(False, "the database has no tables yet: run `digest init` to create them")
    if known_revision(current):
        return Check(False, f"the database is at migration {current} but this release needs "
                            f"{head}: run `digest init` to migrate it")
    return Check(False, f"the database is at migration {current}, which this release does not "
                        "know (migrated by a newer release?): deploy that release again")


def _redis_and_beat(app: App, now: datetime) -> tuple[Check, Check]:
    client = connect(app)
    try:
        ticked = last_tick(client)
    except redis.RedisError as exc:
        return (Check(False, f"cannot reach Redis at {_where(app.settings.rate_limit_url)}: "
                             f"{exc} Is it running, "
                             "and is DIGEST_REDIS_URL (DIGEST_BROKER_URL when unset) right?"),
                _UNJUDGED)
    finally:
        client.close()
    return Check(True, "reachable"), _beat(app, ticked, now)


def _beat(app: App, ticked: datetime | None, now: datetime) -> Check:
    limit = app.settings.beat_stale_minutes
    if ticked is None:
        return Check(False, f"no heartbeat from beat (none yet, or none for "
                            f"{HEARTBEAT_TTL // 3600} h): {_START_BEAT}")
    minutes = max(0.0, (now - ticked).total_seconds() / 60)
    if minutes > limit:
        return Check(False, f"no heartbeat for {int(minutes)} min (last {ticked.isoformat()}; "
                            f"DIGEST_BEAT_STALE_MINUTES is {limit:g}): {_START_BEAT}")
    return Check(True, f"ticked {int(minutes)} min ago")
