"""Length policy for strings a feed supplies, before they reach a bounded column.

PostgreSQL refuses a value longer than its VARCHAR (``StringDataRightTruncation``) and any NUL
character; SQLite accepts both, so a policy that is not applied in code only fails in
production. Each stored feed-derived string goes through one of these:

- ``clip``: text a person reads (a title, an author): cut at a character boundary, on a word
  when one is near, with an ellipsis.
- ``fit_or_none``: a value that is useless when cut (an ETag, a Last-Modified, a hub URL):
  dropped, so the next poll is simply unconditional or the hub unused.
"""

from __future__ import annotations

import re

__all__ = ["clean", "clip", "fit_or_none"]

# NUL (PostgreSQL refuses it) and lone surrogates (not encodable as UTF-8).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_ELLIPSIS = "…"


def clean(text: str) -> str:
    """``text`` without the characters no database column can hold."""
    return _UNSTORABLE.sub("", text)


def clip(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters, cut at a word when one is near."""
    text = clean(text)
    if len(text) <= limit:
        return text
    cut = text[: limit - len(_ELLIPSIS)]
    space = cut.rfind(" ")
    if space >= limit * 3 // 4:
        cut = cut[:space]
    return cut.rstrip() + _ELLIPSIS


def fit_or_none(value: str | None, limit: int) -> str | None:
    """``value`` if it fits in ``limit`` characters, else None (a cut one would be wrong)."""
    if value is None:
        return None
    value = clean(value)
    return value if len(value) <= limit else None
