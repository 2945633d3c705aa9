"""The Celery app and its tasks: thin shells that take ids and call the service layer.

Configuration follows Celery's task guide: JSON only, ``acks_late`` with prefetch 1 (a send
task is safe to repeat because ``delivery.send_batch`` claims its ledger row first), time
limits, task events on (for Flower), worker children recycled, explicit imports. The broker
is Redis or RabbitMQ (``dispatch.transport_options``): on Redis a ``visibility_timeout`` well
above the longest retry backoff (``retry.MAX_DELAY``) plus the task time limit, so Redis never
redelivers a message that is merely waiting; on RabbitMQ durable queues and persistent
messages (Celery's defaults there), and every task and every retry's
countdown well inside RabbitMQ's consumer timeout (30 minutes by default), after which it
would close the worker's channel. Beat runs the weekly digest at ``SCHEDULE`` in ``TIMEZONE``.
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from celery import Celery, Task
from celery.schedules import crontab
from celery.signals import setup_logging, worker_init

from digest import logs, sentry
from digest.bootstrap import build, check_can_send
from digest.config import SEND_TASK_TIME_LIMIT, Settings, load_settings
from digest.delivery.alerts_watch import ALERT_INTERVAL
from digest.delivery.dispatch import VISIBILITY_TIMEOUT, CeleryDispatch, transport_options
from digest.delivery.retry import MAX_DELAY
from digest.delivery.scheduled import RELEASE_INTERVAL
from digest.errors import AlreadySentError, ConfigError
from digest.runtime import App
from digest.store.models import Cadence

log = logging.getLogger(__name__)
RELEASE_MINUTES = int(RELEASE_INTERVAL.total_seconds() // 60)

TASK_TIME_LIMIT = SEND_TASK_TIME_LIMIT  # a batch is one HTTP request or one SMTP session
MAX_TASKS_PER_CHILD = 1000  # a child process is replaced after this many tasks
RABBITMQ_CONSUMER_TIMEOUT = 1800  # seconds: RabbitMQ's default consumer_timeout
if VISIBILITY_TIMEOUT <= MAX_DELAY + TASK_TIME_LIMIT:  # pragma: no cover - a design invariant
    raise RuntimeError("the Redis visibility_timeout must exceed the longest retry backoff")
if RABBITMQ_CONSUMER_TIMEOUT <= MAX_DELAY + TASK_TIME_LIMIT:  # pragma: no cover - likewise
    raise RuntimeError("a task or a retry's countdown must end within RabbitMQ's consumer timeout")


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """Poll hourly; every five minutes the release of the weekly and daily digests at each
    reader's own hour (``delivery.scheduled``: SCHEDULE in TIMEZONE for readers who keep the
    operator's); instant sends hourly; reconcile and beat's heartbeat every minute, operator
    alerts every five minutes, and the nightly expiry of sign-ups that were never confirmed
    and of old delivery records."""
    return {
        "poll-feeds": {"task": "digest.tasks.poll_feeds_task", "schedule": crontab(minute="0")},
        "release": {  # the weekly and daily digests, at each reader's own hour
            "task": "digest.tasks.release_task",
            "schedule": crontab(minute=f"*/{RELEASE_MINUTES}"),  # on the clock's 5 minutes
            "options": {"expires": RELEASE_INTERVAL.total_seconds()},
        },
        "instant-digest": {  # just after each hourly poll
            "task": "digest.tasks.send_scheduled_task",
            "schedule": crontab(minute="5"),
            "args": [Cadence.INSTANT.value],
        },
        "reconcile": {"task": "digest.tasks.reconcile_task", "schedule": 60.0},
        "beat-heartbeat": {  # read by /readyz; a tick stuck in a queue is dropped, not piled up
            "task": "digest.tasks.beat_heartbeat_task",
            "schedule": 60.0,
            "options": {"expires": 120},
        },
        "operator-alerts": {  # the web process checks too: a dead beat cannot report itself
            "task": "digest.tasks.check_alerts_task",
            "schedule": ALERT_INTERVAL,
            "options": {"expires": ALERT_INTERVAL},
        },
        "websub-renew": {
            "task": "digest.tasks.websub_renew_task",
            "schedule": crontab(minute="15", hour="*/6"),
        },
        "expire-pending": {
            "task": "digest.tasks.expire_pending_task",
            "schedule": crontab(minute="30", hour="3"),
        },
        "prune-deliveries": {
            "task": "digest.tasks.prune_deliveries_task",
            "schedule": crontab(minute="45", hour="3"),
        },
    }


def make_celery(settings: Settings) -> Celery:
    """A Celery app configured from ``settings``."""
    app = Celery("digest", broker=settings.broker_url, include=["digest.tasks"])
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_max_tasks_per_child=MAX_TASKS_PER_CHILD,  # bounds a slow leak in a child
        worker_send_task_events=True,  # what `-E` does: Flower and `celery events` see tasks
        task_send_sent_event=True,  # ... including those still waiting on the queue
        task_time_limit=TASK_TIME_LIMIT,
        task_soft_time_limit=TASK_TIME_LIMIT - 30,
        broker_transport_options=transport_options(settings.broker_url),
        broker_connection_retry_on_startup=True,
        # A task still running when the broker connection drops finishes: its message comes
        # back to another worker, whose ledger claim then finds the batch taken.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        timezone=settings.timezone,
        enable_utc=True,
        beat_schedule=beat_schedule(settings),
        worker_hijack_root_logger=False,
    )
    return app


celery_app = make_celery(load_settings())


@setup_logging.connect  # type: ignore[untyped-decorator]
def _configure_logging(**_: Any) -> None:
    """Celery leaves logging to us: worker and beat log like the CLI and the web app."""
    settings = load_settings()
    logs.configure(settings)
    sentry.configure(settings)  # off unless DIGEST_SENTRY_DSN is set


def refuse_to_start_unable_to_send() -> None:
    """Stop a worker whose settings cannot send mail, with a message naming the setting."""
    try:
        check_can_send(load_settings())
    except ConfigError as exc:
        log.critical("the worker cannot start: %s", exc)
        raise SystemExit(f"error: {exc}") from exc


@worker_init.connect  # type: ignore[untyped-decorator]
def _check_worker_can_send(**_: Any) -> None:
    refuse_to_start_unable_to_send()  # SystemExit passes through Celery's signal dispatch


@cache
def _app() -> App:
    app = build(load_settings(), dispatch=CeleryDispatch(send_task=celery_app.send_task))
    for warning in app.settings.production_warnings():
        log.warning(warning)
    return app


@celery_app.task(name="digest.tasks.poll_feeds_task")  # type: ignore[untyped-decorator]
def poll_feeds_task() -> int:
    """Fetch every configured feed and store new posts."""
    from digest.feeds.poll import poll_feeds

    return len(poll_feeds(_app()))


@celery_app.task(name="digest.tasks.send_scheduled_task")  # type: ignore[untyped-decorator]
def send_scheduled_task(cadence: str) -> str:
    """Claim this period's edition of ``cadence`` and queue its batches."""
    from digest.delivery.send import send_digest

    try:
        return send_digest(_app(), cadence=Cadence(cadence), queue=True).describe()
    except AlreadySentError as exc:
        return str(exc)


@celery_app.task(name="digest.tasks.release_task")  # type: ignore[untyped-decorator]
def release_task() -> str:
    """Claim the weekly and daily periods now due and queue every batch whose hour has come."""
    from digest.delivery.scheduled import run_tick

    return run_tick(_app(), dispatch=_app().dispatch).describe()


@celery_app.task(name="digest.tasks.send_batch_task", bind=True, max_retries=None)  # type: ignore[untyped-decorator]
def send_batch_task(self: Task[Any, Any], batch_id: str) -> str:
    """Send one ledger batch; a transient failure comes back after a jittered backoff. A
    batch of a paused edition is not claimed: it stays pending (the resume queues it again)
    and the task returns "paused", with no retry."""
    from digest.delivery.batch import send_batch

    outcome = send_batch(_app(), batch_id)
    if outcome.status == "pending":
        raise self.retry(countdown=outcome.retry_in)
    return outcome.status


@celery_app.task(name="digest.tasks.beat_heartbeat_task")  # type: ignore[untyped-decorator]
def beat_heartbeat_task() -> None:
    """Note in Redis that beat ticked (and a worker ran it): ``/readyz`` reads it."""
    from datetime import UTC, datetime

    from digest.delivery.heartbeat import record_tick

    record_tick(_app(), now=datetime.now(UTC))


@celery_app.task(name="digest.tasks.reconcile_task")  # type: ignore[untyped-decorator]
def reconcile_task() -> int:
    """Re-drive stale batches and close finished editions."""
    from digest.delivery.reconcile import reconcile

    return len(reconcile(_app(), dispatch=_app().dispatch).redriven)


@celery_app.task(name="digest.tasks.signup_task", bind=True, max_retries=5)  # type: ignore[untyped-decorator]
def signup_task(self: Task[Any, Any], address: str, ip: str | None, source: str,
                at: str, timezone: str | None = None, hour: int | None = None) -> None:
    """Record a sign-up handed over by the web app and mail its confirmation.

    ``timezone`` and ``hour`` (the reader's delivery time) are optional: a message queued
    before they existed carries four arguments and is recorded the same.

    A database outage is retried; a failed mail is logged by ``readers.optin.subscribe``,
    which frees the address for the reader's next try.
    """
    from sqlalchemy.exc import OperationalError

    from digest.readers.signup import SignupJob, record

    try:
        record(_app(), SignupJob.from_args(address, ip, source, at, timezone, hour))
    except OperationalError as exc:
        raise self.retry(exc=exc, countdown=30) from exc


@celery_app.task(name="digest.tasks.welcome_task")  # type: ignore[untyped-decorator]
def welcome_task(subscriber_id: int) -> bool:
    """Send the welcome mail to a reader who just confirmed."""
    from digest.readers.optin import send_welcome

    return send_welcome(_app(), subscriber_id)


@celery_app.task(name="digest.tasks.expire_pending_task")  # type: ignore[untyped-decorator]
def expire_pending_task() -> int:
    """Forget sign-ups that were never confirmed in time."""
    from digest.readers.roster import expire_pending

    return expire_pending(_app())


@celery_app.task(name="digest.tasks.prune_deliveries_task")  # type: ignore[untyped-decorator]
def prune_deliveries_task() -> int:
    """Forget delivery records past DIGEST_DELIVERY_RETENTION_DAYS."""
    from digest.delivery.record import prune_expired

    return prune_expired(_app())


@celery_app.task(name="digest.tasks.websub_renew_task")  # type: ignore[untyped-decorator]
def websub_renew_task() -> int:
    """Subscribe to, or renew, the WebSub hubs the feeds advertise."""
    from digest.feeds.websub import renew_due

    return len(renew_due(_app()))


@celery_app.task(name="digest.tasks.check_alerts_task")  # type: ignore[untyped-decorator]
def check_alerts_task() -> list[str]:
    """Open or close the operator's alert episodes, mailing each new one once."""
    from datetime import UTC, datetime

    from digest.delivery.alerts import check_alerts

    return check_alerts(_app(), now=datetime.now(UTC))
