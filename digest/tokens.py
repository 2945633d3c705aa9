"""Signed tokens for reader links (itsdangerous).

Confirmation tokens expire; unsubscribe and preferences tokens never do (a reader may click
an old email's link years later). Each purpose has its own salt, so a token made for one
link cannot be used for another.
"""

from __future__ import annotations

from enum import StrEnum

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from digest.errors import InvalidTokenError


class Purpose(StrEnum):
    CONFIRM = "confirm"
    UNSUBSCRIBE = "unsubscribe"
    PREFERENCES = "preferences"


class Tokens:
    """Makes and reads the signed subscriber-id tokens used in links."""

    def __init__(self, secret_key: str, confirm_max_age_seconds: int = 72 * 3600) -> None:
        self._serializers = {
            p: URLSafeTimedSerializer(secret_key, salt=f"digest.{p.value}") for p in Purpose
        }
        self._confirm_max_age = confirm_max_age_seconds

    def make(self, purpose: Purpose, subscriber_id: int) -> str:
        return str(self._serializers[purpose].dumps(subscriber_id))

    def read(self, purpose: Purpose, token: str) -> int:
        """The subscriber id in ``token``; raises InvalidTokenError if forged or expired."""
        max_age = self._confirm_max_age if purpose is Purpose.CONFIRM else None
        try:
            value = self._serializers[purpose].loads(token, max_age=max_age)
        except SignatureExpired as exc:
            raise InvalidTokenError("this link has expired; please sign up again") from exc
        except BadSignature as exc:
            raise InvalidTokenError("this link is not valid") from exc
        if not isinstance(value, int):
            raise InvalidTokenError("this link is not valid")
        return value
