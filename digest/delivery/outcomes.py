"""What a send reports: one batch's outcome, a whole send's result, a reconcile pass."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from digest.wording import plural


@dataclass(frozen=True)
class BatchOutcome:
    """What one ``send_batch`` call did.

    ``status``: sent | pending (transient failure, retry after ``retry_in`` s) | failed |
    skipped (not claimable: already sent, failed, or being sent by another worker) |
    paused (not claimed: its edition is paused; the batch stays pending for the resume).
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
    status: str  # sent | failed | queued | empty | dry-run | test | sending | paused
    reason: str | None
    recipients: int
    batches: int
    sent: int
    failed: int
    cadence: str | None = None
    posts: tuple[str, ...] = ()  # the titles, in the edition's order
    # Readers who already received some of the posts elsewhere: (how many, the titles they
    # still get; none: they are skipped). Filled in by a dry run.
    partial: tuple[tuple[int, tuple[str, ...]], ...] = ()
    # Readers whose topics leave out some of the posts: (how many, the titles they get;
    # none: no post in their topics, no mail). Filled in by a dry run.
    by_topic: tuple[tuple[int, tuple[str, ...]], ...] = ()

    def describe(self) -> str:
        """The outcome for the operator, then the posts' titles (a dry run lists the same)."""
        if self.status == "test":
            return self.reason or "test copy sent"
        edition = f"edition {self.edition_id}: " if self.edition_id is not None else ""
        cadence = f" ({self.cadence})" if self.cadence else ""
        line = f"{edition}{self.status}{cadence}"
        if self.status == "dry-run" and self.batches:
            line += (f": would send {plural(len(self.posts), 'post')} to"
                     f" {plural(self.recipients, 'reader')} in {plural(self.batches, 'batch')}")
        elif self.status == "dry-run":
            line += f": nothing would be sent ({plural(self.recipients, 'reader')} waiting)"
        elif self.status in ("queued", "sent", "failed", "sending", "paused"):
            line += (f": {plural(len(self.posts), 'post')} to"
                     f" {plural(self.recipients, 'reader')} in {plural(self.batches, 'batch')}"
                     f" ({self.sent} sent, {self.failed} failed)")
        if self.reason:
            line += f"\n{self.reason}"
        if self.batches:
            line += "".join(f"\n  - {title}" for title in self.posts)
        for count, titles in self.partial:
            who = f"of them, {plural(count, 'reader')} already received"
            line += (f"\n{who} some of these posts and will get only: {'; '.join(titles)}"
                     if titles else f"\n{who} all of these posts and will get nothing")
        for count, titles in self.by_topic:
            who = f"of them, {plural(count, 'reader')} {'follows' if count == 1 else 'follow'}"
            line += (f"\n{who} topics that leave out some posts and will get only: "
                     f"{'; '.join(titles)}" if titles
                     else f"\n{who} topics with no post in this digest and will get no mail")
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
