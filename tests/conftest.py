"""Shared fixtures: settings, databases (SQLite and PostgreSQL), Redis, RabbitMQ, ../shared.

A test that needs a service or ../shared skips with the reason on a developer's clone and
fails when CI=true, so CI can never go green by skipping.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy import create_engine, text

from digest.bootstrap import build
from digest.config import Settings
from digest.mail.transports.memory import MemoryTransport
from digest.runtime import App
from digest.store import migrate as schema

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
PG_ADMIN_URL = os.environ.get(
    "DIGEST_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_TEST_URL = os.environ.get("DIGEST_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
AMQP_TEST_URL = os.environ.get("DIGEST_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


def unavailable(reason: str) -> None:
    """Skip on a developer's clone; fail in CI, where every service must be there."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: required)")
    pytest.skip(reason)


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared beside the clone (feeds, SendGrid spec, Compose schema)."""
    if not (SHARED / "feeds").is_dir():
        unavailable(f"{SHARED} is absent: fixtures from ../shared are not available")
    return SHARED


@pytest.fixture(scope="session")
def redis_url() -> str:
    if not _port_open("127.0.0.1", 6379):
        unavailable("Redis is not running on 127.0.0.1:6379")
    return REDIS_TEST_URL


def _rabbitmqctl(*args: str) -> bool:
    """Run ``rabbitmqctl`` (only present beside a local RabbitMQ); False when it cannot."""
    tool = shutil.which("rabbitmqctl")
    if tool is None:
        return False
    try:
        done = subprocess.run([tool, *args], capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    """RabbitMQ for this session: a vhost of its own when ``rabbitmqctl`` can make one (so
    parallel runs never share a queue), else DIGEST_TEST_AMQP_URL as it is (tests purge)."""
    parts = urlsplit(AMQP_TEST_URL)
    if not _port_open(parts.hostname or "127.0.0.1", parts.port or 5672):
        unavailable(f"RabbitMQ is not running on {parts.hostname}:{parts.port or 5672}")
    vhost = f"digest_test_{uuid.uuid4().hex[:10]}"
    local = parts.hostname in ("127.0.0.1", "localhost")
    if not (local and _rabbitmqctl("add_vhost", vhost)):
        yield AMQP_TEST_URL
        return
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, parts.username or "guest", ".*", ".*", ".*")
        yield urlunsplit((parts.scheme, parts.netloc, f"/{vhost}", "", ""))
    finally:
        _rabbitmqctl("delete_vhost", vhost)


BROKERS = ["redis", "rabbitmq"]


@pytest.fixture(params=BROKERS)
def broker(request: pytest.FixtureRequest, redis_url: str) -> dict[str, str]:
    """The broker settings of a test that runs on each broker: Redis alone, or RabbitMQ
    beside the Redis that keeps rate limits and beat's heartbeat."""
    if request.param == "redis":
        return {"broker_url": redis_url, "redis_url": redis_url}
    return {"broker_url": str(request.getfixturevalue("amqp_url")), "redis_url": redis_url}


def worker_pool(settings: Settings) -> str:
    """The pool of a test's one-process workers: ``solo`` on Redis; ``threads`` on RabbitMQ,
    where a solo worker holding a retry's countdown stops taking messages for ~10 s (the
    consumer waits in the very thread that would run the task; prefork, the default in
    production, does not)."""
    return "threads" if settings.broker_transport == "amqp" else "solo"


def purge_broker(settings: Settings) -> None:
    """Drop every message queued on the test broker (and, on Redis, all it holds)."""
    import redis

    if settings.broker_transport == "redis":
        redis.Redis.from_url(settings.broker_url).flushdb()
        return
    from digest.tasks import make_celery

    celery = make_celery(settings)
    try:
        celery.control.purge()
    finally:
        celery.close()


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    """Settings for a test: nothing read from the environment or a .env file."""
    values: dict[str, object] = {
        "database_url": f"sqlite:///{tmp_path / 'digest.db'}",
        "broker_url": REDIS_TEST_URL,
        "feed_url": ["http://127.0.0.1:1/feed/"],
        "base_url": "https://news.example.org",
        "secret_key": "test-secret",
        "admin_token": "test-admin-token",
        "outbox_dir": tmp_path / "outbox",
        "from_email": "digest@news.example.org",
        "from_name": "Diplomatic Opinion",
        "postal_address": "1 Example Street, Istanbul, Turkey",
        "fetch_allow_private": ["127.0.0.1"],  # the local feed servers; nothing else
        # The host names test clients use (TestClient, a uvicorn on 127.0.0.1).
        "allowed_hosts": ["testserver", "127.0.0.1", "localhost"],
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A throwaway PostgreSQL database for this test session."""
    if not _port_open("127.0.0.1", 5432):
        unavailable("PostgreSQL is not running on 127.0.0.1:5432")
    name = f"digest_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    engine = create_engine(url)
    schema.upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate(app: App) -> None:
    from digest.store.models import Base

    names = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with app.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


def clean_pg_app(settings: Settings) -> App:
    """The app of ``settings`` on its PostgreSQL test database, migrated and emptied, with its
    Redis flushed: what the tests with real workers start from."""
    import redis

    app = build(settings)
    schema.upgrade(app.engine)
    _truncate(app)
    redis.Redis.from_url(settings.rate_limit_url).flushdb()
    return app


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each storage test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'digest.db'}"
    return str(request.getfixturevalue("pg_database"))


def _no_sleep(seconds: float) -> None:
    """Retries in tests happen at once; the backoff they would wait is asserted instead."""


@pytest.fixture
def transport() -> MemoryTransport:
    return MemoryTransport()


@pytest.fixture
def app(db_url: str, tmp_path: Path, transport: MemoryTransport) -> Iterator[App]:
    """A migrated app on SQLite or PostgreSQL with an in-memory transport."""
    built = build(make_settings(tmp_path, database_url=db_url), lambda: transport,
                  sleep=_no_sleep)
    schema.upgrade(built.engine)
    if built.engine.dialect.name == "postgresql":
        _truncate(built)
    yield built
    built.engine.dispose()


@pytest.fixture
def sqlite_app(tmp_path: Path, transport: MemoryTransport) -> Iterator[App]:
    """A migrated app on SQLite only, for tests that are not about storage."""
    built = build(make_settings(tmp_path), lambda: transport, sleep=_no_sleep)
    schema.upgrade(built.engine)
    yield built
    built.engine.dispose()


@pytest.fixture(autouse=True)
def _fresh_variants() -> Iterator[None]:
    """Each test starts with an empty per-process cache of rendered variants."""
    from digest.delivery.variants import variants

    variants.clear()
    yield
