"""Settings: names and defaults from DESIGN.md; bad values name the setting."""

from __future__ import annotations

import pytest

from digest.config import Settings, load_settings
from digest.errors import ConfigError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for key in list(__import__("os").environ):
        if key.startswith("DIGEST_") or key == "SENDGRID_API_KEY":
            monkeypatch.delenv(key)


def test_defaults_are_the_documented_ones() -> None:
    s = load_settings()
    assert s.database_url == "sqlite:///./digest.db"
    assert s.broker_url == "redis://localhost:6379/0"
    assert s.feed_urls == ["https://diplomaticopinion.com/feed/"]
    assert s.mail_backend == "outbox"
    assert s.sendgrid_host == "https://api.sendgrid.com"
    assert s.schedule == "0 8 * * mon"
    assert s.timezone == "Europe/Istanbul"


def test_environment_and_sendgrid_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_FEED_URL", "https://a.example/feed/, https://b.example/rss")
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.secret-value")
    monkeypatch.setenv("DIGEST_MAIL_BACKEND", "sendgrid")
    s = load_settings()
    assert s.feed_urls == ["https://a.example/feed/", "https://b.example/rss"]
    assert s.sendgrid_api_key is not None
    assert s.sendgrid_api_key.get_secret_value() == "SG.secret-value"
    assert "SG.secret-value" not in repr(s)


def test_dotenv_file_is_read(tmp_path) -> None:
    (tmp_path / ".env").write_text("DIGEST_BLOG_NAME=From Dotenv\n")
    assert load_settings().blog_name == "From Dotenv"


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("DIGEST_MAIL_BACKEND", "pigeon", "DIGEST_MAIL_BACKEND"),
        ("DIGEST_SCHEDULE", "every monday", "DIGEST_SCHEDULE"),
        ("DIGEST_SCHEDULE", "@weekly", "DIGEST_SCHEDULE"),
        ("DIGEST_SCHEDULE", "0 8 * * mon 2027", "DIGEST_SCHEDULE"),
        ("DIGEST_TIMEZONE", "Mars/Olympus", "DIGEST_TIMEZONE"),
        ("DIGEST_BATCH_SIZE", "many", "DIGEST_BATCH_SIZE"),
    ],
)
def test_invalid_setting_names_itself(monkeypatch: pytest.MonkeyPatch, key, value, named) -> None:
    monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert named in str(info.value)


def test_empty_admin_token_means_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_ADMIN_TOKEN", "")
    assert Settings().admin_token is None


@pytest.mark.parametrize("value", ["foo", "mysql://u@h/db", "postgresql://u@h/db"])
def test_unusable_database_url_names_the_setting(monkeypatch: pytest.MonkeyPatch,
                                                 value: str) -> None:
    monkeypatch.setenv("DIGEST_DATABASE_URL", value)
    with pytest.raises(ConfigError, match="DIGEST_DATABASE_URL") as caught:
        load_settings()
    assert "postgresql+psycopg://" in str(caught.value)  # says what would work


def test_unreachable_database_names_the_setting_and_hides_the_password() -> None:
    from digest.store import migrate as schema
    from digest.store.sessions import make_engine

    engine = make_engine("postgresql+psycopg://u:s3cret@127.0.0.1:1/nothing")
    with pytest.raises(ConfigError, match="DIGEST_DATABASE_URL") as caught:
        schema.upgrade(engine)
    assert "s3cret" not in str(caught.value) and "127.0.0.1:1" in str(caught.value)


def test_real_mail_with_demo_settings_is_warned_about() -> None:
    demo = Settings(mail_backend="outbox")
    assert demo.production_warnings() == []
    risky = Settings(mail_backend="smtp")
    text = " ".join(risky.production_warnings())
    assert "DIGEST_BASE_URL" in text and "DIGEST_SECRET_KEY" in text
    assert "DIGEST_POSTAL_ADDRESS" in text
    short = Settings(mail_backend="sendgrid", batch_stale_seconds=60)
    assert "DIGEST_BATCH_STALE_SECONDS" in " ".join(short.production_warnings())
    ready = Settings(mail_backend="sendgrid", base_url="https://news.example.org",
                     secret_key="a-long-random-value", postal_address="1 Example St, Istanbul")
    assert ready.production_warnings() == []


def test_rabbitmq_needs_a_redis_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_BROKER_URL", "amqp://digest:secret@mq.internal:5672/digest")
    with pytest.raises(ConfigError, match="DIGEST_REDIS_URL is required") as caught:
        load_settings()
    assert "amqp://" in str(caught.value) and "secret" not in str(caught.value)
    monkeypatch.setenv("DIGEST_REDIS_URL", "redis://cache.internal:6379/1")
    s = load_settings()
    assert (s.broker_transport, s.rate_limit_url) == ("amqp", "redis://cache.internal:6379/1")


def test_redis_broker_doubles_as_the_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_BROKER_URL", "redis://queue.internal:6379/3")
    s = load_settings()
    assert (s.broker_transport, s.rate_limit_url) == ("redis", "redis://queue.internal:6379/3")


@pytest.mark.parametrize(("key", "value"), [("DIGEST_BROKER_URL", "sqs://queue"),
                                            ("DIGEST_REDIS_URL", "amqp://mq:5672//")])
def test_a_broker_or_redis_of_another_kind_is_refused(monkeypatch: pytest.MonkeyPatch, key,
                                                      value) -> None:
    monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=key):
        load_settings()
