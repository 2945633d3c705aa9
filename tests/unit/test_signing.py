"""The fast fan-out links are exactly what digest.links and digest.tokens make and read."""

from __future__ import annotations

from digest.links import recipient_for
from digest.signing import LinkSigner, RecipientFactory
from digest.tokens import Purpose, Tokens
from digest.wiring import build
from tests.conftest import make_settings


def test_fast_tokens_are_read_by_tokens() -> None:
    signer, tokens = LinkSigner("s3cret"), Tokens("s3cret")
    for purpose in Purpose:
        assert tokens.read(purpose, signer.make(purpose, 123456)) == 123456
    unsub, prefs = signer.unsubscribe_and_preferences(77)
    assert tokens.read(Purpose.UNSUBSCRIBE, unsub) == 77
    assert tokens.read(Purpose.PREFERENCES, prefs) == 77


def test_recipient_factory_matches_recipient_for(tmp_path, monkeypatch) -> None:
    import time

    frozen = 1_790_000_000
    monkeypatch.setattr(time, "time", lambda: float(frozen))  # same stamp for both signers
    for mailto in (None, "unsubscribe@news.example.org"):
        settings = make_settings(tmp_path, unsubscribe_mailto=mailto)
        app = build(settings)
        fast = RecipientFactory(settings)(42, "zoe@example.org", "Zoë", frozen)
        slow = recipient_for(settings, app.tokens, 42, "zoe@example.org", "Zoë")
        assert fast.headers == slow.headers  # one-click URL and mailto tail, byte for byte
        assert fast.substitutions == slow.substitutions
        for key, url in fast.substitutions.items():
            purpose = Purpose.UNSUBSCRIBE if "unsubscribe" in key else Purpose.PREFERENCES
            assert url.rsplit("/", 1)[0] == slow.substitutions[key].rsplit("/", 1)[0]
            assert app.tokens.read(purpose, url.rsplit("/", 1)[1]) == 42
        app.engine.dispose()
