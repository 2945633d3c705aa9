"""An in-memory transport for tests: remembers what it was asked to send."""

from __future__ import annotations

from collections.abc import Sequence

from digest.mail.message import OutgoingMail, Recipient


class MemoryTransport:
    """Keeps every batch in ``sent``; ``fail_with`` makes the next calls raise."""

    def __init__(self, max_batch: int = 1000) -> None:
        self.max_batch = max_batch
        self.sent: list[tuple[OutgoingMail, list[Recipient]]] = []
        self.fail_with: list[Exception] = []

    def send_batch(self, mail: OutgoingMail, recipients: Sequence[Recipient]) -> None:
        if self.fail_with:
            raise self.fail_with.pop(0)
        self.sent.append((mail, list(recipients)))

    @property
    def recipients(self) -> list[str]:
        return [r.email for _, batch in self.sent for r in batch]

    def close(self) -> None:
        pass
