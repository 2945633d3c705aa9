"""A sign-up form stamp served before an upgrade still reads after it."""

from __future__ import annotations

import time

from itsdangerous import Signer

from digest.readers.signup import SignupRequest, is_bot
from tests.conftest import make_settings


def test_a_stamp_signed_with_the_released_salt_is_not_a_bot(tmp_path) -> None:
    settings = make_settings(tmp_path)
    served = time.time() - 60  # a page opened a minute ago, before the deploy
    stamp = Signer("test-secret", salt="digest.signup-form").sign(f"{served:.3f}").decode()
    request = SignupRequest(email="reader@example.org", ip="192.0.2.1", stamp=stamp)
    assert not is_bot(settings, request)
