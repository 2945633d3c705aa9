"""Reader links for fan-out: each reader's two tokens cost two one-shot HMACs.

A million-reader send signs two tokens per reader. ``digest.tokens.link_signer`` is
itsdangerous' ``Signer`` with the key derived once and ``hmac.digest`` as the algorithm, so
this module only formats URLs and headers around it; the tokens are exactly what
``Tokens.make`` makes and ``Tokens.read`` reads (``tests/mail/test_signing.py``).
"""

from __future__ import annotations

from digest.config import Settings
from digest.mail.links import list_unsubscribe_headers
from digest.mail.message import Recipient
from digest.mail.render import PLACEHOLDERS
from digest.tokens import Purpose, link_payload, link_signer


class LinkSigner:
    """Makes a reader's unsubscribe and preferences tokens with signers built once."""

    def __init__(self, secret_key: str) -> None:
        self._unsub = link_signer(secret_key, Purpose.UNSUBSCRIBE)
        self._prefs = link_signer(secret_key, Purpose.PREFERENCES)

    def unsubscribe_and_preferences(self, subscriber_id: int,
                                    link_key: str | None) -> tuple[str, str]:
        """Both link tokens of one reader (the same payload, two salts)."""
        value = link_payload(subscriber_id, link_key)
        raw, head = value.encode("ascii"), value + "."
        return (head + self._unsub.get_signature(raw).decode("ascii"),
                head + self._prefs.get_signature(raw).decode("ascii"))


class RecipientFactory:
    """Builds each reader's ``Recipient`` (links, substitutions, List-Unsubscribe) cheaply.

    Equivalent to ``digest.mail.links.recipient_for`` for every reader of one batch.
    """

    def __init__(self, settings: Settings, signer: LinkSigner | None = None) -> None:
        self._settings = settings
        self._signer = signer or LinkSigner(settings.secret_key.get_secret_value())
        self._unsub = f"{settings.base_url}/unsubscribe/"
        self._prefs = f"{settings.base_url}/preferences/"
        self._unsub_key = PLACEHOLDERS["unsubscribe_url"]
        self._prefs_key = PLACEHOLDERS["preferences_url"]
        # The tail of list_unsubscribe_headers(), computed once (checked equal in the tests).
        sample = list_unsubscribe_headers(settings, "")["List-Unsubscribe"]
        self._mailto = sample[len("<>"):]

    def __call__(self, subscriber_id: int, email: str, name: str | None,
                 link_key: str | None) -> Recipient:
        """One reader, with their own signed links."""
        unsub_token, prefs_token = self._signer.unsubscribe_and_preferences(
            subscriber_id, link_key)
        unsub = self._unsub + unsub_token
        headers = {"List-Unsubscribe": f"<{unsub}>{self._mailto}",
                   "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
        return Recipient(email, name, subscriber_id,
                         {self._unsub_key: unsub, self._prefs_key: self._prefs + prefs_token},
                         headers)
