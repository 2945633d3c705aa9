"""Signed tokens for reader links (itsdangerous).

A token names a reader by id *and* by the reader's ``link_key``, a random value stored on the
row and replaced when the reader is erased. Ids are never reused, so a token stops working for
everyone once its reader is deleted or erased: it can never act on somebody else.

Confirmation tokens expire (``URLSafeTimedSerializer``). Unsubscribe and preferences tokens
never do (a reader may click an old email's link years later), so they carry no timestamp: a
plain ``Signer`` whose key is derived once, signing with the one-shot ``hmac.digest``. That is
what makes signing two links per reader cheap in a million-reader fan-out
(``digest.mail.personalize``). Each purpose has its own salt, so a token made for one link cannot be
used for another.

Readers created before ``link_key`` existed have none (NULL); their links sent before the
upgrade (timestamped, id only) keep working until the reader is erased.
"""

from __future__ import annotations

import binascii
import hmac
from enum import StrEnum
from functools import lru_cache
from typing import NamedTuple

from itsdangerous import BadSignature, SignatureExpired, Signer, URLSafeTimedSerializer
from itsdangerous.signer import SigningAlgorithm

from digest.errors import InvalidTokenError

__all__ = ["LinkRef", "Purpose", "Tokens", "derived_key", "link_payload", "link_signer"]


@lru_cache(maxsize=16)
def derived_key(secret_key: str, use: str) -> bytes:
    """A key for one use of DIGEST_SECRET_KEY (HMAC-SHA256 as the derivation).

    Address hashes and rate-limit keys get their own keys, so none of them can be replayed as
    another (a link signature, say), and none reveals the secret.
    """
    return hmac.digest(secret_key.encode("utf-8"), f"digest.key.{use}".encode(), "sha256")


class Purpose(StrEnum):
    CONFIRM = "confirm"
    UNSUBSCRIBE = "unsubscribe"
    PREFERENCES = "preferences"


class LinkRef(NamedTuple):
    """Who a token names: the reader's id and link key ("" for a reader without one)."""

    subscriber_id: int
    link_key: str


class _OneShotHmac(SigningAlgorithm):
    """HMAC through one-shot ``hmac.digest`` (itsdangerous' algorithm extension point)."""

    def __init__(self, digest: str = "sha1") -> None:
        self._digest = digest

    def get_signature(self, key: bytes, value: bytes) -> bytes:
        return hmac.digest(key, value, self._digest)


_URLSAFE = bytes.maketrans(b"+/", b"-_")


class _LinkSigner(Signer):
    """A ``Signer`` that derives its key once instead of on every signature."""

    def __init__(self, secret_key: str, salt: str) -> None:
        super().__init__(secret_key, salt=salt, algorithm=_OneShotHmac())
        self._key = super().derive_key()

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        return self._key if secret_key is None else super().derive_key(secret_key)

    def get_signature(self, value: str | bytes) -> bytes:
        """The URL-safe unpadded base64 signature, as ``Signer`` makes it, in two C calls."""
        data = value.encode("utf-8") if isinstance(value, str) else value
        sig = self.algorithm.get_signature(self._key, data)
        return binascii.b2a_base64(sig, newline=False).rstrip(b"=").translate(_URLSAFE)


def link_signer(secret_key: str, purpose: Purpose) -> Signer:
    """The signer of ``purpose``'s unbounded links (key derived once)."""
    return _LinkSigner(secret_key, salt=f"digest.{purpose.value}.link")


def link_payload(subscriber_id: int, link_key: str | None) -> str:
    """What a reader's unsubscribe and preferences links sign: their id and link key."""
    return f"{subscriber_id}.{link_key or ''}"


_INVALID = "this link is not valid"


class Tokens:
    """Makes and reads the signed reader tokens used in links."""

    def __init__(self, secret_key: str, confirm_max_age_seconds: int = 72 * 3600) -> None:
        self._confirm = URLSafeTimedSerializer(secret_key, salt="digest.confirm")
        self._signers = {p: link_signer(secret_key, p)
                         for p in (Purpose.UNSUBSCRIBE, Purpose.PREFERENCES)}
        # Links mailed before link keys existed: id only, timestamped, never expiring.
        self._legacy = {p: URLSafeTimedSerializer(secret_key, salt=f"digest.{p.value}")
                        for p in (Purpose.UNSUBSCRIBE, Purpose.PREFERENCES)}
        self._confirm_max_age = confirm_max_age_seconds

    def make(self, purpose: Purpose, subscriber_id: int, link_key: str | None) -> str:
        """A token for the reader ``subscriber_id`` whose row holds ``link_key``."""
        if purpose is Purpose.CONFIRM:
            return str(self._confirm.dumps([subscriber_id, link_key or ""]))
        return self._signers[purpose].sign(link_payload(subscriber_id, link_key)).decode("ascii")

    def read(self, purpose: Purpose, token: str) -> LinkRef:
        """Who ``token`` names; raises InvalidTokenError if forged, mangled or expired.

        The caller must still check that the reader's current link key matches.
        """
        if purpose is Purpose.CONFIRM:
            return self._read_confirm(token)
        try:
            raw = self._signers[purpose].unsign(token).decode("ascii")
        except BadSignature:
            return self._read_legacy(purpose, token)
        id_text, _, key = raw.partition(".")
        if not id_text.isdigit():
            raise InvalidTokenError(_INVALID)
        return LinkRef(int(id_text), key)

    def _read_confirm(self, token: str) -> LinkRef:
        try:
            value = self._confirm.loads(token, max_age=self._confirm_max_age)
        except SignatureExpired as exc:
            raise InvalidTokenError("this link has expired; please sign up again") from exc
        except BadSignature as exc:
            raise InvalidTokenError(_INVALID) from exc
        if isinstance(value, int) and not isinstance(value, bool):
            return LinkRef(value, "")  # made before link keys existed
        if (isinstance(value, list) and len(value) == 2 and isinstance(value[0], int)
                and isinstance(value[1], str)):
            return LinkRef(value[0], value[1])
        raise InvalidTokenError(_INVALID)

    def _read_legacy(self, purpose: Purpose, token: str) -> LinkRef:
        try:
            value = self._legacy[purpose].loads(token)
        except BadSignature as exc:
            raise InvalidTokenError(_INVALID) from exc
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidTokenError(_INVALID)
        return LinkRef(value, "")
