"""The transport seam: the one thing delivery needs from a mail provider."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from digest.message import OutgoingMail, Recipient


class Transport(Protocol):
    """Sends one batch: one shared message, up to ``max_batch`` recipients.

    Raises ``TransientDeliveryError`` (retry later) or ``PermanentDeliveryError`` (never
    retry); returning normally means the provider accepted the whole batch.
    """

    max_batch: int

    def send_batch(self, mail: OutgoingMail, recipients: Sequence[Recipient]) -> None: ...

    def close(self) -> None: ...
