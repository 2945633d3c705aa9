"""A feed entry's ``<category>`` values, made safe to show and to use as topic keys.

Feed text is hostile: a category may be empty, padded, thousands of characters long, carry
control or bidi-override characters, or repeat in another case. ``categories_of`` keeps at
most ``MAX_CATEGORIES`` distinct values (case-insensitively), each at most ``MAX_LENGTH``
characters with its whitespace collapsed; ``topic_key`` is the value a topic is known by.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Any

__all__ = ["MAX_CATEGORIES", "MAX_LENGTH", "categories_of", "clean_category", "topic_key"]

MAX_CATEGORIES = 20
MAX_LENGTH = 200  # the length of topics.key and topics.name

_SPACE = re.compile(r"\s+")
# Bidi embeddings, overrides and isolates: they would reorder the console's text around them.
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")


def clean_category(value: Any) -> str:
    """One category as a reader may see it: NFC, no control characters, single spaces."""
    if not isinstance(value, str):
        return ""
    text = unicodedata.normalize("NFC", _BIDI.sub("", value))
    text = "".join(ch if unicodedata.category(ch)[0] != "C" or ch.isspace() else " "
                   for ch in text)
    text = _SPACE.sub(" ", text).strip()
    return text[:MAX_LENGTH].rstrip()


def topic_key(name: str) -> str:
    """The key a category is known by: its cleaned text, case-folded."""
    return clean_category(name).casefold()[:MAX_LENGTH].rstrip()


def categories_of(tags: Iterable[Any]) -> list[str]:
    """The distinct categories of feedparser's ``entry.tags`` (term, else label), in order."""
    found: list[str] = []
    seen: set[str] = set()
    for tag in tags:
        if not hasattr(tag, "get"):
            continue
        text = clean_category(tag.get("term")) or clean_category(tag.get("label"))
        key = topic_key(text)
        if not key or key in seen:
            continue
        seen.add(key)
        found.append(text)
        if len(found) >= MAX_CATEGORIES:
            break
    return found
