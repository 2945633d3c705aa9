"""The transport seam: the one thing delivery needs from a mail provider."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from digest.errors import PermanentDeliveryError, TransientDeliveryError
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


class BatchStopped(PermanentDeliveryError):
    """A permanent failure after the first ``accepted`` recipients were already handed over.

    Delivery records those readers as handed (``refused``: those refused one by one) before
    marking the rest failed, so a resend does not mail them again.
    """

    def __init__(self, message: str, status: int | None = None, *, accepted: int,
                 refused: Sequence[str] = ()) -> None:
        super().__init__(message, status)
        self.accepted = accepted
        self.refused = list(refused)


class MaybeAccepted(TransientDeliveryError):
    """The request went out but no answer came back (a read timeout, a dropped connection,
    a time limit): the provider may have accepted it. A blind retry could mail its readers
    twice; when the provider's events settle it (``ledger.settled_by_events``), delivery
    waits for them instead."""


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
