"""Signed link tokens: purpose-bound, tamper-proof, confirmation tokens expire."""

from __future__ import annotations

import time

import pytest

from digest.errors import InvalidTokenError
from digest.tokens import Purpose, Tokens


def test_round_trip() -> None:
    tokens = Tokens("k")
    assert tokens.read(Purpose.UNSUBSCRIBE, tokens.make(Purpose.UNSUBSCRIBE, 42)) == 42


def test_token_for_one_purpose_is_refused_for_another() -> None:
    tokens = Tokens("k")
    with pytest.raises(InvalidTokenError):
        tokens.read(Purpose.UNSUBSCRIBE, tokens.make(Purpose.CONFIRM, 42))


def test_tampered_and_foreign_tokens_are_refused() -> None:
    token = Tokens("k").make(Purpose.UNSUBSCRIBE, 42)
    with pytest.raises(InvalidTokenError):
        Tokens("k").read(Purpose.UNSUBSCRIBE, token[:-2] + ("A" if token[-2] != "A" else "B")
                         + token[-1])
    with pytest.raises(InvalidTokenError):
        Tokens("other-key").read(Purpose.UNSUBSCRIBE, token)


def test_confirmation_expires_but_unsubscribe_does_not(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = Tokens("k", confirm_max_age_seconds=60)
    confirm = tokens.make(Purpose.CONFIRM, 7)
    unsub = tokens.make(Purpose.UNSUBSCRIBE, 7)
    later = time.time() + 10 * 365 * 86400
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(InvalidTokenError, match="expired"):
        tokens.read(Purpose.CONFIRM, confirm)
    assert tokens.read(Purpose.UNSUBSCRIBE, unsub) == 7
