"""The Celery app runs with production settings: task events for Flower, one message at a
time acknowledged after the work, time limits and worker children recycled."""

from __future__ import annotations

from digest.config import Settings
from digest.tasks import TASK_TIME_LIMIT, make_celery


def test_workers_send_task_events_for_monitoring() -> None:
    conf = make_celery(Settings()).conf
    assert conf.worker_send_task_events is True  # no `-E` needed on the command line
    assert conf.task_send_sent_event is True  # Flower also sees tasks still on the queue


def test_a_worker_takes_one_message_and_acknowledges_it_after_the_work() -> None:
    conf = make_celery(Settings()).conf
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True


def test_tasks_are_time_limited_and_worker_children_recycled() -> None:
    conf = make_celery(Settings()).conf
    assert conf.task_time_limit == TASK_TIME_LIMIT
    assert 0 < conf.task_soft_time_limit < conf.task_time_limit
    assert conf.worker_max_tasks_per_child == 1000


def test_each_broker_gets_its_own_transport_options() -> None:
    redis_conf = make_celery(Settings(broker_url="redis://127.0.0.1:6379/0")).conf
    assert redis_conf.broker_transport_options["visibility_timeout"] > 300 + TASK_TIME_LIMIT
    amqp = Settings(broker_url="amqp://guest:guest@127.0.0.1:5672//",
                    redis_url="redis://127.0.0.1:6379/0")
    amqp_conf = make_celery(amqp).conf
    assert "visibility_timeout" not in amqp_conf.broker_transport_options  # Redis only
    assert amqp_conf.task_acks_late is True and amqp_conf.worker_prefetch_multiplier == 1
