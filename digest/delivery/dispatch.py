"""Where queued batches go: the Celery workers, reached through the broker by task name.

This is the port ``send_digest(queue=True)`` and ``reconcile`` hand batch ids to. It never
imports the Celery shell (``digest.tasks``): the message names the task, and whichever
worker serves the broker runs it. The broker is the one in the settings the App was built
from, so a send queued from the web app or the CLI goes where their settings say.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from digest.errors import BrokerUnavailableError

__all__ = ["SEND_BATCH_TASK", "VISIBILITY_TIMEOUT", "CeleryDispatch", "transport_options"]

SEND_BATCH_TASK = "digest.tasks.send_batch_task"
SendTask = Callable[..., Any]  # Celery.send_task(name, args=[...])
# Redis only: how long a message taken by a worker stays invisible before Redis hands it to
# another; well above the longest retry backoff plus the task time limit (``digest.tasks``).
VISIBILITY_TIMEOUT = 3600


def transport_options(broker_url: str) -> dict[str, Any]:
    """Kombu's transport options for the broker ``broker_url`` names, the same for the
    workers and for whoever queues a message.

    Redis redelivers an unacknowledged message after ``visibility_timeout``; RabbitMQ needs
    nothing of the kind: it hands a message back the moment its worker's connection drops.
    Publisher confirms (``confirm_publish``) are left off on purpose: a task that retries
    itself publishes from inside the worker, and with confirms on the solo pool that publish
    stalls for seconds. A message lost on its way costs nothing: the batch is in the ledger,
    and reconcile queues it again.
    """
    if broker_url.partition("://")[0].lower() in ("amqp", "amqps", "pyamqp"):
        return {}
    return {"visibility_timeout": VISIBILITY_TIMEOUT}


class CeleryDispatch:
    """One ``send_batch_task`` message per ledger batch; call only after the ledger commit."""

    def __init__(self, broker_url: str | None = None, send_task: SendTask | None = None) -> None:
        if broker_url is None and send_task is None:
            raise ValueError("give a broker URL or a send_task")
        self._broker_url = broker_url
        self._send_task = send_task

    def _sender(self) -> SendTask:
        if self._send_task is None:
            from celery import Celery

            client = Celery("digest-dispatch", broker=self._broker_url, set_as_current=False)
            client.conf.update(task_serializer="json", broker_connection_retry_on_startup=True,
                               broker_transport_options=transport_options(str(self._broker_url)))
            self._send_task = client.send_task
        return self._send_task

    def __call__(self, batch_ids: Sequence[str]) -> None:
        """Raises BrokerUnavailableError when the broker refuses a message: the batches are
        in the ledger already, so reconcile sends them once the broker is back."""
        send = self._sender()
        try:
            for batch_id in batch_ids:
                send(SEND_BATCH_TASK, args=[batch_id])
        except Exception as exc:  # kombu raises its own OperationalError and socket errors
            raise BrokerUnavailableError(str(exc)) from exc
