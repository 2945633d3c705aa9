"""Words for the operator's output: counts with their noun in the right number."""

from __future__ import annotations

_IRREGULAR = {"batch": "batches", "reply": "replies", "entry": "entries", "copy": "copies"}


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``1 reader``, ``2 readers``, ``0 batches``: the count and its noun, agreed."""
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {many or _IRREGULAR.get(noun) or noun + 's'}"
