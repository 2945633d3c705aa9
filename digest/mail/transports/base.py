"""The transport seam: the one thing delivery needs from a mail provider."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from digest.errors import TransientDeliveryError
from digest.mail.message import OutgoingMail, Recipient

# Per-reader refusals a transport reports while the rest of the batch went out.
Refusals = Sequence[str]


class BatchInterrupted(TransientDeliveryError):
    """A transient failure after the first ``accepted`` recipients were already handed over.

    Delivery resumes the batch after them, so a connection that drops mid-batch does not
    mail those readers twice. ``refused`` lists those of them refused one by one, as
    ``send_batch`` would have returned them.
    """

    def __init__(self, message: str, status: int | None = None,
                 retry_after: float | None = None, *, accepted: int,
                 refused: Sequence[str] = ()) -> None:
        super().__init__(message, status, retry_after)
        self.accepted = accepted
        self.refused = list(refused)


class Transport(Protocol):
    """Sends one batch: one shared message, up to ``max_batch`` recipients.

    Raises ``TransientDeliveryError`` (retry later; ``BatchInterrupted`` when some readers
    were already accepted) or ``PermanentDeliveryError`` (never retry). Returning normally
    means the provider took the batch; the return value lists readers it refused one by one
    ("address: reason"), which are recorded, not retried.
    """

    max_batch: int

    def send_batch(self, mail: OutgoingMail, recipients: Sequence[Recipient]
                   ) -> Refusals | None: ...

    def close(self) -> None: ...
