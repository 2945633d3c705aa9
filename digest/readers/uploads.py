"""An uploaded CSV kept between its preview and the operator's confirmation.

The file waits in Redis (``DIGEST_REDIS_URL``) under a random token for at most an hour and is
dropped once imported: every web process of the site sees it (whichever one answers the
confirmation), nothing is left on a disk, and an abandoned preview expires by itself. The
token is 32 random URL-safe characters; a token that is not one is never looked up.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from dataclasses import dataclass

import redis

from digest.errors import SubscriberError

__all__ = ["HeldFile", "HeldUploads"]

HOLD_SECONDS = 3600
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")


@dataclass(frozen=True)
class HeldFile:
    """A file waiting for confirmation: its name as uploaded and its bytes."""

    token: str
    name: str
    data: bytes


class HeldUploads:
    """Uploads held by token in Redis, each for ``seconds``."""

    def __init__(self, url: str, *, prefix: str = "digest:import:",
                 seconds: int = HOLD_SECONDS) -> None:
        self._redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=3)
        self._prefix = prefix
        self._seconds = seconds

    def hold(self, name: str, data: bytes) -> HeldFile:
        """Keep ``data`` for an hour; raises SubscriberError if it cannot be kept."""
        token = secrets.token_urlsafe(24)
        try:
            with self._redis.pipeline() as pipe:
                pipe.hset(self._prefix + token, mapping={"name": name[:200], "data": data})
                pipe.expire(self._prefix + token, self._seconds)
                pipe.execute()
        except redis.RedisError as exc:
            raise SubscriberError(f"the file could not be kept for the confirmation step "
                                  f"(Redis: {exc}); try again in a moment") from exc
        return HeldFile(token, name[:200], data)

    def get(self, token: str) -> HeldFile | None:
        """The file held under ``token``, or None if there is none (expired, or imported)."""
        if not _TOKEN.fullmatch(token):
            return None
        try:
            found = self._redis.hgetall(self._prefix + token)
        except redis.RedisError as exc:
            raise SubscriberError(f"the uploaded file cannot be read back (Redis: {exc}); "
                                  "try again in a moment") from exc
        data, name = found.get(b"data"), found.get(b"name", b"upload.csv")
        if not isinstance(data, bytes):
            return None
        label = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
        return HeldFile(token, label, data)

    def drop(self, token: str) -> None:
        """Forget the file (after its import)."""
        if _TOKEN.fullmatch(token):
            with contextlib.suppress(redis.RedisError):  # it expires within the hour anyway
                self._redis.delete(self._prefix + token)

    def close(self) -> None:
        self._redis.close()
