"""What a setting's value may be: the checks ``config.Settings`` runs on single values.

Each check returns the value as it is kept (upper-cased, stripped, ...) or raises ValueError
with what was expected; pydantic turns that into the ConfigError ``load_settings`` reports.
"""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import SecretStr

REDIS_SCHEMES = ("redis", "rediss", "unix")
AMQP_SCHEMES = ("amqp", "amqps", "pyamqp")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DATABASE_DRIVERS = ("sqlite", "sqlite+pysqlite", "postgresql+psycopg")
# An argon2 hash in its PHC string form, as argon2-cffi's PasswordHasher writes it.
_ARGON2_HASH = re.compile(
    r"^\$argon2(id|i|d)\$v=\d+\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$")


def scheme(url: str) -> str:
    """The URL's scheme, lower-cased ("" without one)."""
    return url.partition("://")[0].lower() if "://" in url else ""


def entries(value: object) -> object:
    """A list setting's entries: a string split at commas and newlines, every entry stripped,
    empty ones dropped; anything else as given."""
    if isinstance(value, str):
        value = value.replace("\n", ",").split(",")
    if isinstance(value, list):
        return [str(part).strip() for part in value if str(part).strip()]
    return value


def broker_url(value: str) -> str:
    if scheme(value) not in REDIS_SCHEMES + AMQP_SCHEMES:
        raise ValueError("expected redis://host:6379/0 or amqp://user:password@host:5672/vhost")
    return value


def redis_url(value: str | None) -> str | None:
    if value is not None and scheme(value) not in REDIS_SCHEMES:
        raise ValueError("expected redis://host:6379/1 (rediss:// with TLS)")
    return value


def argon2_hash(value: SecretStr | None) -> SecretStr | None:
    """The console password: an argon2 hash only, never the password itself."""
    if value is None or not value.get_secret_value().strip():
        return None
    if not _ARGON2_HASH.match(value.get_secret_value().strip()):
        raise ValueError("expected an argon2 hash ($argon2id$...), never the password "
                         "itself; run `digest admin-password` and paste what it prints")
    return SecretStr(value.get_secret_value().strip())


def log_level(value: str) -> str:
    if value.upper() not in LOG_LEVELS:
        raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}; got {value!r}")
    return value.upper()


def timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone: {value!r}") from exc
    return value


def database_url(value: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    expected = ("expected sqlite:///path/to/digest.db or "
                "postgresql+psycopg://user:password@host:5432/dbname")
    try:
        url = make_url(value)
    except ArgumentError as exc:
        raise ValueError(f"not a database URL; {expected}") from exc
    if url.drivername not in DATABASE_DRIVERS:
        raise ValueError(f"unsupported database driver {url.drivername!r}; {expected}")
    return value
