"""Who may sign in to the console: the argon2-hashed DIGEST_ADMIN_PASSWORD, or DIGEST_ADMIN_TOKEN
typed as the password.

Every attempt is counted per client IP first (``SIGN_IN_SCOPE`` in the shared RateLimiter), and
every attempt runs one argon2 verification, against the configured hash or a decoy, so a wrong
password takes as long as a right one and an unset password cannot be told from a set one.
"""

from __future__ import annotations

import hmac
import secrets
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from digest.config import Settings
from digest.readers.ratelimit import RateLimiter

__all__ = ["SIGN_IN_SCOPE", "check_sign_in", "credentials_mark", "hash_password",
           "sign_in_possible"]

SIGN_IN_SCOPE = "sign-in"  # its Limit is in readers.ratelimit.DEFAULT_LIMITS
_hasher = PasswordHasher()  # argon2id with the library's (RFC 9106 low-memory) parameters


def hash_password(password: str) -> str:
    """The value for DIGEST_ADMIN_PASSWORD: an argon2id hash of ``password``."""
    if not password:
        raise ValueError("the password is empty")
    return _hasher.hash(password)


@lru_cache(maxsize=1)
def _decoy_hash() -> str:
    """A hash nobody knows the password of, verified when no password is set."""
    return _hasher.hash(secrets.token_urlsafe(24))


def _hash(settings: Settings) -> str | None:
    secret = settings.admin_password
    return secret.get_secret_value() if secret is not None else None


def _token(settings: Settings) -> str | None:
    secret = settings.admin_token
    value = secret.get_secret_value().strip() if secret is not None else ""
    return value or None


def sign_in_possible(settings: Settings) -> bool:
    """True when a password hash or an admin token is set (otherwise nobody can sign in)."""
    return _hash(settings) is not None or _token(settings) is not None


def _matches(settings: Settings, given: str) -> bool:
    hashed = _hash(settings)
    try:
        by_password = _hasher.verify(hashed or _decoy_hash(), given) and hashed is not None
    except (VerificationError, InvalidHashError):
        by_password = False
    token = _token(settings)
    by_token = token is not None and hmac.compare_digest(given.encode(), token.encode())
    return by_password or by_token


def check_sign_in(settings: Settings, limiter: RateLimiter, password: str,
                  client: str | None) -> bool:
    """Whether ``password`` signs the operator in; RateLimitedError once ``client`` tried too often.

    The attempt is counted before anything is checked, right or wrong, so guessing costs the
    same budget as signing in.
    """
    limiter.hit(SIGN_IN_SCOPE, client or "unknown")
    return _matches(settings, password)


def credentials_mark(settings: Settings, key: bytes) -> str:
    """A short MAC of the configured credentials: changing the password or token ends every
    session signed before (the mark in their cookie no longer matches)."""
    material = f"{_hash(settings) or ''}\0{_token(settings) or ''}".encode()
    return hmac.digest(key, material, "sha256").hex()[:16]
