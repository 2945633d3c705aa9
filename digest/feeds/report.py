"""What one feed's poll found, for the operator (`digest poll`), the logs and the tasks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Outcome = Literal["new", "updated", "unchanged", "failed", "gone", "empty", "skipped"]


_TITLES_SHOWN = 5


@dataclass
class PollReport:
    """What one poll of one feed did, for the operator and the tests."""

    url: str
    outcome: Outcome
    new_titles: list[str] = field(default_factory=list)
    updated: int = 0
    error: str | None = None
    feed_id: int | None = None
    backlog: int = 0  # new posts recorded but not announced (first poll, older than window)
    hidden: int = 0  # posts that vanished from the feed before being sent
    pages: int = 1
    warning: str | None = None
    moved_to: str | None = None
    not_modified: bool = False  # the server answered 304

    def describe(self) -> str:
        """One line for the operator: what happened to this feed, and why."""
        text = f"{self.url}: "
        if self.outcome == "new":
            announced = len(self.new_titles) - self.backlog
            text += f"{len(self.new_titles)} new post{'s' if len(self.new_titles) != 1 else ''}"
            if self.backlog:
                text += f" ({announced} to announce, {self.backlog} older recorded as backlog)"
            shown = ", ".join(f"“{t}”" for t in self.new_titles[:_TITLES_SHOWN])
            more = len(self.new_titles) - _TITLES_SHOWN
            text += f": {shown}" + (f" and {more} more" if more > 0 else "")
            if self.updated:
                text += f"; {self.updated} updated"
        elif self.outcome == "updated":
            text += f"{self.updated} post{'s' if self.updated != 1 else ''} updated, nothing new"
        elif self.outcome == "unchanged":
            text += "unchanged" + (" (304 Not Modified)" if self.not_modified else "")
        elif self.outcome == "empty":
            text += "the feed has no entries; nothing changed"
        elif self.outcome == "skipped":
            text += f"skipped: {self.error}"
        elif self.outcome == "gone":
            text += f"gone: {self.error}"
        else:
            text += f"failed: {self.error}"
        if self.pages > 1:
            text += f" [read {self.pages} pages to close a gap]"
        if self.hidden:
            text += f"; {self.hidden} removed from the feed, left out of the digest"
        if self.moved_to:
            text += f"; moved permanently to {self.moved_to}"
        return text
