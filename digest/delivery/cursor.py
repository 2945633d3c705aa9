"""Where a batch resumes: past the readers in id order who are done."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


class Cursor:
    """The batch's resume point: past the longest run of readers, in id order, who are done
    (handed over, refused, or with nothing new). Readers go out grouped by the posts they
    still need, not in id order, so the cursor stops before the first reader not yet done."""

    def __init__(self, ids: Sequence[int], done: Iterable[int]) -> None:
        self.ids, self.done, self.pos = list(ids), set(done), 0
        self._walk()

    def _walk(self) -> None:
        while self.pos < len(self.ids) and self.ids[self.pos] in self.done:
            self.pos += 1

    def mark(self, ids: Iterable[int]) -> int | None:
        """Record ``ids`` as done; the new cursor, or None when it did not move or all are done
        (a finished batch keeps its range, as before)."""
        before = self.pos
        self.done.update(ids)
        self._walk()
        if self.pos == before or self.pos == len(self.ids):
            return None
        return self.ids[self.pos - 1]

    def pending(self) -> list[int]:
        return [sid for sid in self.ids if sid not in self.done]
