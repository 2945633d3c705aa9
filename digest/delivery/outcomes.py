"""What a send reports: one batch's outcome, a whole send's result, a reconcile pass."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BatchOutcome:
    """What one ``send_batch`` call did.

    ``status``: sent | pending (transient failure, retry after ``retry_in`` s) | failed |
    skipped (not claimable: already sent, failed, or being sent by another worker).
    """

    batch_id: str
    status: str
    recipients: int = 0
    attempts: int = 0
    error: str | None = None
    retry_in: float | None = None


@dataclass(frozen=True)
class SendResult:
    """The result of ``send_digest``, for the CLI, the admin route and the scheduler."""

    edition_id: int | None
    status: str  # sent | failed | queued | empty | dry-run | test | sending
    reason: str | None
    recipients: int
    batches: int
    sent: int
    failed: int

    def describe(self) -> str:
        """One or two lines for the operator."""
        if self.status == "test":
            return self.reason or "test copy sent"
        edition = f"edition {self.edition_id}: " if self.edition_id is not None else ""
        line = f"{edition}{self.status}"
        if self.status == "dry-run" and self.batches:
            line += f": would send to {self.recipients} readers in {self.batches} batches"
        elif self.status == "dry-run":
            line += f": nothing would be sent ({self.recipients} readers waiting)"
        elif self.status in ("queued", "sent", "failed", "sending"):
            line += (f": {self.recipients} readers in {self.batches} batches"
                     f" ({self.sent} sent, {self.failed} failed)")
        if self.reason:
            line += f"\n{self.reason}"
        return line

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ReconcileReport:
    """Batches re-driven and editions closed by one ``reconcile`` pass."""

    redriven: list[str]
    finished: list[int]
    in_doubt: list[str] = dataclasses.field(default_factory=list)  # waiting for events
