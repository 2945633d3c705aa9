"""Signed link tokens: purpose-bound, reader-bound, tamper-proof, confirmation tokens expire."""

from __future__ import annotations

import time

import pytest
from itsdangerous import URLSafeTimedSerializer

from digest.errors import InvalidTokenError
from digest.tokens import LinkRef, Purpose, Tokens


def test_round_trip() -> None:
    tokens = Tokens("k")
    for purpose in Purpose:
        assert tokens.read(purpose, tokens.make(purpose, 42, "key-A_b")) == LinkRef(42, "key-A_b")
    assert tokens.read(Purpose.UNSUBSCRIBE, tokens.make(Purpose.UNSUBSCRIBE, 42, None)) == (
        LinkRef(42, ""))


def test_token_for_one_purpose_is_refused_for_another() -> None:
    tokens = Tokens("k")
    for made in Purpose:
        for read in Purpose:
            if made is not read:
                with pytest.raises(InvalidTokenError):
                    tokens.read(read, tokens.make(made, 42, "key"))


def test_tampered_and_foreign_tokens_are_refused() -> None:
    token = Tokens("k").make(Purpose.UNSUBSCRIBE, 42, "key")
    with pytest.raises(InvalidTokenError):
        Tokens("k").read(Purpose.UNSUBSCRIBE, token[:-2] + ("A" if token[-2] != "A" else "B")
                         + token[-1])
    with pytest.raises(InvalidTokenError):
        Tokens("k").read(Purpose.UNSUBSCRIBE, token.replace("42.", "43.", 1))
    with pytest.raises(InvalidTokenError):
        Tokens("other-key").read(Purpose.UNSUBSCRIBE, token)
    for junk in ("", ".", "42", "42..", "a.b.c", "é.x.y", "x" * 5000):
        with pytest.raises(InvalidTokenError):
            Tokens("k").read(Purpose.PREFERENCES, junk)


def test_confirmation_expires_but_unsubscribe_does_not(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = Tokens("k", confirm_max_age_seconds=60)
    confirm = tokens.make(Purpose.CONFIRM, 7, "key")
    unsub = tokens.make(Purpose.UNSUBSCRIBE, 7, "key")
    later = time.time() + 10 * 365 * 86400
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(InvalidTokenError, match="expired"):
        tokens.read(Purpose.CONFIRM, confirm)
    assert tokens.read(Purpose.UNSUBSCRIBE, unsub) == LinkRef(7, "key")


def test_links_mailed_before_link_keys_name_a_reader_without_one() -> None:
    """Old id-only links keep working, but only for readers whose link key is still unset."""
    for purpose in (Purpose.UNSUBSCRIBE, Purpose.PREFERENCES, Purpose.CONFIRM):
        old = URLSafeTimedSerializer("k", salt=f"digest.{purpose.value}").dumps(42)
        assert Tokens("k").read(purpose, old) == LinkRef(42, "")
