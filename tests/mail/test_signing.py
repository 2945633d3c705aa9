"""The fast fan-out links are exactly what digest.mail.links and digest.tokens make and read."""

from __future__ import annotations

from digest.bootstrap import build
from digest.mail.links import recipient_for
from digest.mail.personalize import LinkSigner, RecipientFactory
from digest.tokens import LinkRef, Purpose, Tokens
from tests.conftest import make_settings


def test_fast_tokens_are_the_tokens_of_tokens() -> None:
    signer, tokens = LinkSigner("s3cret"), Tokens("s3cret")
    unsub, prefs = signer.unsubscribe_and_preferences(77, "k3y_-x")
    assert unsub == tokens.make(Purpose.UNSUBSCRIBE, 77, "k3y_-x")
    assert prefs == tokens.make(Purpose.PREFERENCES, 77, "k3y_-x")
    assert tokens.read(Purpose.UNSUBSCRIBE, unsub) == LinkRef(77, "k3y_-x")
    assert tokens.read(Purpose.PREFERENCES, prefs) == LinkRef(77, "k3y_-x")
    assert signer.unsubscribe_and_preferences(77, None) == (
        tokens.make(Purpose.UNSUBSCRIBE, 77, None), tokens.make(Purpose.PREFERENCES, 77, None))


def test_recipient_factory_matches_recipient_for(tmp_path) -> None:
    for mailto in (None, "unsubscribe@news.example.org"):
        settings = make_settings(tmp_path, unsubscribe_mailto=mailto)
        app = build(settings)
        fast = RecipientFactory(settings)(42, "zoe@example.org", "Zoë", "k3y")
        slow = recipient_for(settings, app.tokens, 42, "zoe@example.org", "Zoë", link_key="k3y")
        assert fast == slow  # links, substitutions and headers, byte for byte
        for key, url in fast.substitutions.items():
            purpose = Purpose.UNSUBSCRIBE if "unsubscribe" in key else Purpose.PREFERENCES
            assert app.tokens.read(purpose, url.rsplit("/", 1)[1]) == LinkRef(42, "k3y")
        app.engine.dispose()
