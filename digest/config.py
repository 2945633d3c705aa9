"""Settings, read once from the environment or `.env` (prefix DIGEST_).

Every other module receives what it needs from here through the wiring point
(`digest.bootstrap`); none of them reads the environment on its own.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from digest import setting_values as values
from digest.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _templates_dir() -> Path:
    """The top-level templates/: inside the package in a wheel, beside it in a checkout."""
    packaged = Path(__file__).resolve().parent / "templates"
    return packaged if packaged.is_dir() else PROJECT_ROOT / "templates"


TEMPLATES_DIR = _templates_dir()
SAMPLE_FEED = Path(__file__).resolve().parent / "sample" / "feed.xml"

MailBackend = Literal["outbox", "sendgrid", "smtp"]
_DEV_SECRET = "change-me-in-production"  # noqa: S105 - the placeholder that is warned about
# A send task is stopped after this long; a batch is only re-claimed as stale after it.
SEND_TASK_TIME_LIMIT = 300
# One SendGrid request or SMTP conversation step; well inside the task's time limit, so a
# hung provider fails the attempt (and it is retried) instead of the task being killed.
SEND_TIMEOUT = 30.0

class Settings(BaseSettings):
    """All configuration of the service. Names are the contract in DESIGN.md."""

    model_config = SettingsConfigDict(
        env_prefix="DIGEST_",
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        extra="ignore",
    )

    database_url: Annotated[str, AfterValidator(values.database_url)] = "sqlite:///./digest.db"
    # Redis or RabbitMQ (amqp://)
    broker_url: Annotated[str, AfterValidator(values.broker_url)] = "redis://localhost:6379/0"
    # Rate limits and beat's heartbeat; the broker when that is Redis, required with amqp://.
    redis_url: Annotated[str | None, AfterValidator(values.redis_url)] = None
    feed_url: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["https://diplomaticopinion.com/feed/"]
    )
    blog_name: str = "Diplomatic Opinion"
    blog_url: str | None = None  # where readers go back to; see feed_origin
    base_url: str = "http://localhost:8000"
    secret_key: SecretStr = SecretStr(_DEV_SECRET)
    admin_token: SecretStr | None = None
    mail_backend: MailBackend = "outbox"
    outbox_dir: Path = Path("./outbox")
    sendgrid_host: str = "https://api.sendgrid.com"
    sendgrid_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SENDGRID_API_KEY", "DIGEST_SENDGRID_API_KEY")
    )
    sendgrid_webhook_public_key: str | None = None
    smtp_url: str = "smtp://localhost:25"
    from_email: str = "digest@localhost"
    from_name: str = "Diplomatic Opinion"
    reply_to: str | None = None
    unsubscribe_mailto: str | None = None
    postal_address: str = ""  # left out of footers when unset (and warned about)
    schedule: str = "0 8 * * mon"
    timezone: Annotated[str, AfterValidator(values.timezone)] = "Europe/Istanbul"
    subject_template: str = "{blog}: {lead}{more}"
    # Logging (digest.logs): one text line or one JSON object per event, on stderr.
    log_format: Literal["text", "json"] = "text"
    log_level: Annotated[str, AfterValidator(values.log_level)] = "INFO"

    # Feed ingestion
    fetch_timeout: float = 20.0
    fetch_max_bytes: int = 10 * 1024 * 1024
    max_pages: int = 10
    first_poll_window_days: int = 7
    summary_words: int = 55
    # Non-public hosts, IPs or CIDRs a feed, its redirects or its WebSub hub may reach.
    fetch_allow_private: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Delivery
    batch_size: int = 1000
    max_send_attempts: int = 8
    batch_stale_seconds: int = 600
    # How long a batch in doubt (its worker died after the request went out) waits for the
    # provider's "processed" events before it is re-sent to the readers without one.
    # Fractions are accepted (0.05 = 3 s), which the crash tests use.
    in_doubt_minutes: float = Field(default=15, ge=0)
    # Days the per-reader delivery record is kept (pruned nightly); 0 keeps it forever.
    delivery_retention_days: int = Field(default=400, ge=0)
    # The complaint breaker (delivery.breaker): a running edition is paused once its spam
    # complaints pass this fraction of the readers handed over (0.003 = Gmail's 0.3%; 0 turns
    # it off), and only once at least complaint_breaker_min complaints came in.
    complaint_breaker_rate: float = Field(default=0.003, ge=0, le=1)
    complaint_breaker_min: int = Field(default=3, ge=1)

    # Digests worth opening (delivery.worthiness). A weekly or daily digest waits for
    # min_posts new posts, but goes anyway once its oldest post has waited max_wait_days; any
    # digest holds at most max_posts (0: no limit), the oldest first, the rest carried over to
    # the next one. Instant and daily digests leave out posts first seen less than
    # hold_minutes ago (unpublished meanwhile: never sent; edited: sent as edited).
    min_posts: int = Field(default=1, ge=1)
    max_wait_days: float = Field(default=14, gt=0, le=3650, allow_inf_nan=False)
    max_posts: int = Field(default=0, ge=0)
    hold_minutes: float = Field(default=0, ge=0, le=7 * 24 * 60, allow_inf_nan=False)

    # Readers
    welcome_with_latest: bool = True
    confirm_max_age_hours: int = 72
    blocked_domains: Annotated[list[str], NoDecode] = Field(default_factory=list)
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["https://diplomaticopinion.com"]
    )
    min_fill_seconds: float = 2.0

    # Web
    # Host names the web app answers for besides the host of BASE_URL (others get 400).
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Reverse proxies (IPs or CIDRs) whose X-Forwarded-For is believed; empty: nobody's.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Where readers' mails (confirmation, welcome) are sent from: a thread pool inside the web
    # process ("inline", so `digest serve` alone works) or the Celery workers ("celery").
    dispatch: Literal["inline", "celery"] = "inline"

    # The operator's console (/admin in a browser): DIGEST_ADMIN_PASSWORD holds only an argon2
    # hash (`digest admin-password` makes one); DIGEST_ADMIN_TOKEN typed as the password works
    # too. A session lasts this many hours, then the operator signs in again.
    admin_password: Annotated[SecretStr | None, AfterValidator(values.argon2_hash)] = None
    admin_session_hours: float = Field(default=12, gt=0, le=24 * 30)

    # Operations
    # /readyz reports beat as down when its heartbeat is older than this (fractions accepted).
    beat_stale_minutes: float = Field(default=10, gt=0)
    # Who is mailed when something needs a person (delivery.alerts); unset: alerts are logged.
    operator_email: str | None = None

    # Metrics and error reports (digest.metrics, digest.sentry; docs/operating.md)
    # Bearer token for GET /metrics; unset: the admin token; neither: /metrics is off (404).
    metrics_token: SecretStr | None = None
    # Sentry: errors of the CLI, the web app and the workers, addresses scrubbed; unset: off.
    sentry_dsn: SecretStr | None = None
    sentry_environment: str = "production"

    @field_validator("feed_url", "blocked_domains", "cors_origins", "allowed_hosts",
                     mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        return values.entries(value)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _valid_networks(cls, value: object) -> object:
        value = values.entries(value)
        if isinstance(value, list):
            for part in value:
                try:
                    ipaddress.ip_network(part, strict=False)
                except ValueError as exc:
                    raise ValueError(f"{part!r} is not an IP address or CIDR network") from exc
        return value

    @field_validator("fetch_allow_private", mode="before")
    @classmethod
    def _valid_allowances(cls, value: object) -> object:
        from digest.feeds.address_policy import AddressPolicy

        value = values.entries(value)
        if isinstance(value, list):
            AddressPolicy.from_setting(value)  # a ValueError names the bad entry
        return value

    @field_validator("schedule")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        from digest.schedule import parse_schedule  # Celery's crontab: the one cron reader

        parse_schedule(value)
        return value

    @model_validator(mode="after")
    def _redis_beside_rabbitmq(self) -> Settings:
        if self.redis_url is None and self.broker_transport == "amqp":
            raise ValueError(
                "DIGEST_REDIS_URL is required when DIGEST_BROKER_URL is RabbitMQ (amqp://): "
                "rate limits and beat's heartbeat are kept in Redis; set it to redis://host:6379/0")
        return self

    @field_validator("base_url", "sendgrid_host")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    def production_warnings(self) -> list[str]:
        """Settings that are fine for a demo but wrong for mail to real readers."""
        if self.mail_backend == "outbox":
            return []
        found = []
        if not self.base_url.startswith("https://"):
            found.append("DIGEST_BASE_URL is not https: Gmail and Yahoo ignore a one-click "
                         "unsubscribe link over plain http")
        if self.secret_key.get_secret_value() == _DEV_SECRET:
            found.append("DIGEST_SECRET_KEY is the development default: anyone could forge "
                         "confirm and unsubscribe links; set a long random value")
        if self.batch_stale_seconds <= SEND_TASK_TIME_LIMIT:
            found.append(f"DIGEST_BATCH_STALE_SECONDS ({self.batch_stale_seconds}) should exceed "
                         f"the send task's time limit ({SEND_TASK_TIME_LIMIT} s), or a batch "
                         "still being sent can be re-driven and mailed twice")
        if not self.postal_address.strip():
            found.append("DIGEST_POSTAL_ADDRESS is not set: CAN-SPAM wants a postal address "
                         "in every message")
        return found

    @property
    def feed_urls(self) -> list[str]:
        return list(self.feed_url)

    @property
    def feed_origin(self) -> str | None:
        """The first feed URL's scheme and host: the blog, when nothing better is known."""
        from urllib.parse import urlsplit

        for url in self.feed_url:
            parts = urlsplit(url)
            if parts.scheme in ("http", "https") and parts.netloc:
                return f"{parts.scheme}://{parts.netloc}/"
        return None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def broker_transport(self) -> Literal["redis", "amqp"]:
        """Which kind of broker DIGEST_BROKER_URL names."""
        return "amqp" if values.scheme(self.broker_url) in values.AMQP_SCHEMES else "redis"

    @property
    def rate_limit_url(self) -> str:
        """The Redis for rate limits and beat's heartbeat: DIGEST_REDIS_URL, else the broker."""
        if self.redis_url is not None:
            return self.redis_url
        if self.broker_transport != "redis":  # pragma: no cover - refused when loaded
            raise ConfigError("DIGEST_REDIS_URL is required when DIGEST_BROKER_URL is amqp://")
        return self.broker_url

    @property
    def sending_domain(self) -> str:
        return self.from_email.rpartition("@")[2] or "localhost"


def load_settings(**overrides: object) -> Settings:
    """Read the settings; a bad value stops with a message naming the setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            if not err["loc"]:  # a rule across settings: its message names them
                problems.append(str(err["msg"]).removeprefix("Value error, "))
                continue
            name = "DIGEST_" + "_".join(str(p) for p in err["loc"]).upper()
            problems.append(f"{name}: {err['msg']}")
        raise ConfigError("invalid settings: " + "; ".join(problems)) from exc
