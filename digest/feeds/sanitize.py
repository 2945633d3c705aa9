"""Make feed-supplied text and URLs safe to put in an email or a web page.

Feeds are untrusted input: a title may carry markup or a script, a link may be
``javascript:``. Everything a feed gives us passes through here before a template sees it:
markup is reduced to plain text by nh3 (the templates then escape it), and only absolute
http(s) URLs survive as link or image targets.

Two more things are taken out of feed text here, the one place every feed field passes:

- bidi overrides and zero-width characters, which make a title or link text read other
  than it is (``strip_invisible``);
- the opening of a per-reader placeholder (``[%``), so no feed can write
  ``[%preferences_url%]`` into a link, an image or a title and have each reader's private
  link filled in there when the mail is personalised (``neutralise_placeholders``).
"""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

import nh3

_SAFE_SCHEMES = frozenset({"http", "https"})
# Bidi embeddings/overrides/isolates and marks, zero-width space, word joiner, BOM.
_INVISIBLE = re.compile("[\u061c\u200b\u200e\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff]")
# Zero-width (non-)joiners are kept only between two non-ASCII characters, where Persian,
# Indic scripts and emoji sequences (👩\u200d💻) need them; next to ASCII they only disguise.
_JOINABLE = "[^\x00-\x7f\\s\u200c\u200d]"
_STRAY_JOINER = re.compile(f"(?<!{_JOINABLE})[\u200c\u200d]|[\u200c\u200d](?!{_JOINABLE})")
# How every reader placeholder opens (``[%unsubscribe_url%]``): never left in feed text.
PLACEHOLDER_OPEN = "[%"
_TEXT_OPEN = "[\uff05"  # the same to a reader: a fullwidth percent sign
_URL_OPEN = "%5B%25"  # the same to a web server: percent-encoded
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SPACES = re.compile(r"\s+")
# Block boundaries become spaces, so "<p>Hi</p><p>there</p>" reads "Hi there".
_BLOCK_END = re.compile(r"(</(?:p|div|li|h[1-6]|blockquote|tr|td|th)\s*>|<br\s*/?>)", re.I)


def strip_invisible(value: str) -> str:
    """``value`` without bidi overrides and zero-width characters (see ``_STRAY_JOINER``)."""
    return _STRAY_JOINER.sub("", _INVISIBLE.sub("", value))


def neutralise_placeholders(value: str, *, url: bool = False) -> str:
    """``value`` with no ``[%`` left, so it can never be taken for a reader placeholder."""
    if PLACEHOLDER_OPEN not in value:
        return value
    return value.replace(PLACEHOLDER_OPEN, _URL_OPEN if url else _TEXT_OPEN)


def safe_url(url: str | None) -> str | None:
    """``url`` if it is an absolute http(s) URL without control characters, else None.

    A ``[%`` in it is percent-encoded (see ``neutralise_placeholders``).
    """
    if not url:
        return None
    candidate = url.strip()
    if _CONTROL.search(candidate) or " " in candidate:
        return None
    try:
        parts = urlsplit(candidate)
    except ValueError:
        return None
    if parts.scheme.lower() not in _SAFE_SCHEMES or not parts.hostname:
        return None
    return neutralise_placeholders(candidate, url=True)


def plain_text(value: str | None) -> str:
    """Feed text with any markup removed by nh3, entities decoded and whitespace collapsed.

    Control characters, bidi overrides and zero-width characters go too, and a placeholder
    opening ``[%`` is neutralised, last, so nothing removed afterwards can re-form one.
    """
    if not value:
        return ""
    if "<" in value or "&" in value:
        value = html.unescape(nh3.clean(_BLOCK_END.sub(r"\1 ", value), tags=set()))
    value = strip_invisible(_CONTROL.sub(" ", value))
    return neutralise_placeholders(_SPACES.sub(" ", value).strip())

