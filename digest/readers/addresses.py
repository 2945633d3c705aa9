"""Addresses: normalised once (IDNA domains), and remembered only as a keyed hash."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable

from email_validator import EmailNotValidError, validate_email

from digest.errors import InvalidEmailError

MAX_EMAIL_LENGTH = 320


_KEYED = "h1:"  # marks the keyed form; a bare sha256 is 64 hex digits


def email_hash(email: str, key: bytes) -> str:
    """The identity of an address: HMAC-SHA256 (``App.address_key``) of it, lower-cased."""
    mac = hmac.digest(key, email.strip().lower().encode("utf-8"), "sha256")
    return _KEYED + base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def legacy_email_hash(email: str) -> str:
    """The unsalted sha256 stored before keyed hashes: only to find those old rows."""
    return hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()


def email_hashes(email: str, key: bytes) -> tuple[str, str]:
    """Both forms an address may be stored under: (keyed, legacy)."""
    return email_hash(email, key), legacy_email_hash(email)


def _is_blocked(domain: str, blocked: Iterable[str]) -> bool:
    for entry in blocked:
        entry = entry.strip().lower().lstrip("@").lstrip(".")
        if entry and (domain == entry or domain.endswith("." + entry)):
            return True
    return False


def normalise(email: str, blocked_domains: Iterable[str] = ()) -> str:
    """A valid address with its domain lower-cased; raises InvalidEmailError saying why.

    The domain is kept in its IDNA (ASCII) form (``user@xn--bcher-kva.de`` for
    ``user@bücher.de``): both spellings are one reader, a punycode domain stays as typed,
    and only a non-ASCII local part ever needs SMTPUTF8.
    """
    if "\r" in email or "\n" in email:
        raise InvalidEmailError("an email address cannot contain line breaks")
    candidate = email.strip()
    if not candidate:
        raise InvalidEmailError("please enter an email address")
    if len(candidate) > MAX_EMAIL_LENGTH:
        raise InvalidEmailError(f"an email address has at most {MAX_EMAIL_LENGTH} characters")
    try:
        info = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmailError(f"not a valid email address: {exc}") from exc
    domain = info.domain.lower()
    if _is_blocked(domain, blocked_domains) or _is_blocked(info.ascii_domain.lower(),
                                                           blocked_domains):
        raise InvalidEmailError(f"addresses at {domain} cannot subscribe")
    address = f"{info.local_part}@{info.ascii_domain.lower()}"
    if len(address) > MAX_EMAIL_LENGTH:
        raise InvalidEmailError(f"an email address has at most {MAX_EMAIL_LENGTH} characters")
    return address
