"""`GET /readyz` says whether this deployment can do its work: the database reachable and at
the newest migration, Redis reachable, and beat ticking. Anything wrong answers 503 with a
JSON body naming it and what to do; the heartbeat it reads is the one beat's task writes.

Each test runs on SQLite and on PostgreSQL, with the real Redis (its own database number, so
no other test's flush or key can touch the heartbeat).
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from digest.bootstrap import build
from digest.delivery.heartbeat import HEARTBEAT_KEY, record_tick
from digest.mail.transports.memory import MemoryTransport
from digest.readers.ratelimit import RateLimiter
from digest.runtime import App
from digest.store import migrate as schema
from digest.web.app import create_app
from tests.conftest import PG_ADMIN_URL, make_settings


@pytest.fixture
def ready_redis(redis_url: str) -> Iterator[str]:
    """A Redis database of these tests alone, emptied of the heartbeat before and after."""
    url = redis_url.rsplit("/", 1)[0] + "/10"
    client = redis.Redis.from_url(url)
    client.delete(HEARTBEAT_KEY)
    yield url
    client.delete(HEARTBEAT_KEY)
    client.close()


def _app(tmp_path: Path, db_url: str, redis_url: str, *, migrate: bool = True,
         **overrides: object) -> App:
    built = build(make_settings(tmp_path, database_url=db_url, redis_url=redis_url,
                                **overrides), MemoryTransport)
    if migrate:
        schema.upgrade(built.engine)
    return built


@pytest.fixture
def ready_app(db_url: str, tmp_path: Path, ready_redis: str) -> Iterator[App]:
    built = _app(tmp_path, db_url, ready_redis)
    yield built
    built.engine.dispose()


def _readyz(app: App, limiter: RateLimiter, host: str = "testserver") -> tuple[int, dict]:
    with TestClient(create_app(app, limiter=limiter)) as client:
        answer = client.get("/readyz", headers={"Host": host})
    return answer.status_code, answer.json()


def _beat_ticked(app: App, minutes_ago: float) -> None:
    record_tick(app, now=datetime.now(UTC) - timedelta(minutes=minutes_ago))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_ready_when_the_database_redis_and_beat_are_all_well(ready_app, limiter) -> None:
    from digest.tasks import beat_heartbeat_task

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("digest.tasks._app", lambda: ready_app)
        beat_heartbeat_task()  # what beat's minute task writes is what /readyz reads

    status, body = _readyz(ready_app, limiter)

    assert status == 200, body
    assert body["status"] == "ready"
    assert "problems" not in body
    assert set(body["checks"]) == {"database", "broker", "redis", "beat"}
    assert schema.head_revision() in body["checks"]["database"]


def test_any_host_may_ask_like_healthz(ready_app, limiter) -> None:
    _beat_ticked(ready_app, 1)
    status, body = _readyz(ready_app, limiter, host="10.1.2.3:8000")
    assert status == 200, body


def test_unreachable_redis_is_named_quickly(db_url, tmp_path, ready_redis, limiter) -> None:
    good = _app(tmp_path, db_url, ready_redis)
    _beat_ticked(good, 1)
    port = _closed_port()
    app = _app(tmp_path, db_url, f"redis://127.0.0.1:{port}/0")
    started = datetime.now(UTC)

    status, body = _readyz(app, limiter)

    assert status == 503
    assert body["status"] == "not ready"
    assert set(body["problems"]) == {"redis"}  # beat cannot be judged, but is not blamed
    assert f"127.0.0.1:{port}" in body["problems"]["redis"]
    assert "DIGEST_REDIS_URL" in body["problems"]["redis"]
    assert datetime.now(UTC) - started < timedelta(seconds=5)
    good.engine.dispose()
    app.engine.dispose()


def test_a_stale_heartbeat_names_beat(ready_app, limiter) -> None:
    _beat_ticked(ready_app, 14)

    status, body = _readyz(ready_app, limiter)

    assert status == 503
    assert set(body["problems"]) == {"beat"}
    assert "14 min" in body["problems"]["beat"]
    assert "celery -A worker beat" in body["problems"]["beat"]


def test_the_threshold_is_a_setting(db_url, tmp_path, ready_redis, limiter) -> None:
    app = _app(tmp_path, db_url, ready_redis, beat_stale_minutes=30)
    _beat_ticked(app, 14)
    status, body = _readyz(app, limiter)
    assert status == 200, body
    app.engine.dispose()


def test_beat_that_never_ticked_is_down(ready_app, limiter) -> None:
    status, body = _readyz(ready_app, limiter)

    assert status == 503
    assert set(body["problems"]) == {"beat"}
    assert "no heartbeat" in body["problems"]["beat"]
    assert "celery -A worker beat" in body["problems"]["beat"]


@pytest.fixture
def old_schema_url(db_url: str, tmp_path: Path) -> Iterator[str]:
    """A database of its own, migrated only to the revision before the newest."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    name = f"digest_old_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_a_database_behind_the_newest_migration_is_named(old_schema_url, tmp_path,
                                                         ready_redis, limiter) -> None:
    from alembic import command

    app = _app(tmp_path, old_schema_url, ready_redis, migrate=False)
    with app.engine.begin() as conn:
        cfg = schema.alembic_config(app.engine.url.render_as_string(hide_password=False))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
    _beat_ticked(app, 1)

    status, body = _readyz(app, limiter)

    assert status == 503
    assert set(body["problems"]) == {"database"}
    problem = body["problems"]["database"]
    assert "0002" in problem and str(schema.head_revision()) in problem
    assert "digest init" in problem
    app.engine.dispose()


def test_a_database_never_initialised_is_named(old_schema_url, tmp_path, ready_redis,
                                               limiter) -> None:
    app = _app(tmp_path, old_schema_url, ready_redis, migrate=False)
    _beat_ticked(app, 1)

    status, body = _readyz(app, limiter)

    assert status == 503
    assert set(body["problems"]) == {"database"}
    assert "digest init" in body["problems"]["database"]
    app.engine.dispose()


def test_an_unreachable_database_is_named(tmp_path, ready_redis, limiter) -> None:
    port = _closed_port()
    app = _app(tmp_path, f"postgresql+psycopg://nobody@127.0.0.1:{port}/none", ready_redis,
               migrate=False)
    _beat_ticked(app, 1)

    status, body = _readyz(app, limiter)

    assert status == 503
    assert set(body["problems"]) == {"database"}
    assert f"127.0.0.1:{port}" in body["problems"]["database"]
    assert "DIGEST_DATABASE_URL" in body["problems"]["database"]
    app.engine.dispose()


def test_the_heartbeat_expires_after_a_few_hours(ready_app) -> None:
    _beat_ticked(ready_app, 0)
    ttl = redis.Redis.from_url(ready_app.settings.rate_limit_url).ttl(HEARTBEAT_KEY)
    assert 2 * 3600 < ttl <= 6 * 3600


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel does) but never says a word."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


def test_a_redis_that_never_answers_does_not_hang_the_probe(tmp_path, silent_port,
                                                            limiter) -> None:
    app = _app(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}",
               f"redis://127.0.0.1:{silent_port}/0")
    started = datetime.now(UTC)

    status, body = _readyz(app, limiter)

    assert status == 503
    assert set(body["problems"]) == {"redis"}
    assert datetime.now(UTC) - started < timedelta(seconds=5)
    app.engine.dispose()


def test_a_database_that_never_answers_is_reported_at_the_deadline(tmp_path, silent_port,
                                                                   ready_redis) -> None:
    from digest.delivery.health import readiness

    app = _app(tmp_path, f"postgresql+psycopg://nobody@127.0.0.1:{silent_port}/none",
               ready_redis, migrate=False)
    _beat_ticked(app, 1)
    started = datetime.now(UTC)

    found = readiness(app, timeout=0.5)

    assert datetime.now(UTC) - started < timedelta(seconds=2)
    assert set(found.problems) == {"database"}
    assert "did not answer within 0.5 s" in found.problems["database"]
    assert "DIGEST_DATABASE_URL" in found.problems["database"]


def test_beat_schedules_the_heartbeat_every_minute(tmp_path) -> None:
    from digest.tasks import beat_schedule

    entry = beat_schedule(make_settings(tmp_path))["beat-heartbeat"]
    assert entry["task"] == "digest.tasks.beat_heartbeat_task"
    assert entry["schedule"] == 60.0


def test_an_unreachable_broker_is_named(db_url, tmp_path, ready_redis, limiter) -> None:
    port = _closed_port()
    app = _app(tmp_path, db_url, ready_redis, broker_url=f"amqp://guest:guest@127.0.0.1:{port}//")
    _beat_ticked(app, 1)

    status, body = _readyz(app, limiter)

    assert status == 503
    assert set(body["problems"]) == {"broker"}  # Redis (its own URL) and beat are fine
    assert f"127.0.0.1:{port}" in body["problems"]["broker"]
    assert "RabbitMQ" in body["problems"]["broker"]
    assert "DIGEST_BROKER_URL" in body["problems"]["broker"]
    assert "guest:guest" not in json.dumps(body)
    app.engine.dispose()


def test_ready_on_rabbitmq_with_a_redis_of_its_own(db_url, tmp_path, ready_redis, amqp_url,
                                                   limiter) -> None:
    app = _app(tmp_path, db_url, ready_redis, broker_url=amqp_url)
    _beat_ticked(app, 1)

    status, body = _readyz(app, limiter)

    assert status == 200, body
    assert body["checks"]["broker"] == "reachable (RabbitMQ)"
    app.engine.dispose()
