"""Make feed-supplied text and URLs safe to put in an email or a web page.

Feeds are untrusted input: a title may carry markup or a script, a link may be
``javascript:``. Everything a feed gives us passes through here before a template sees it:
markup is reduced to plain text by nh3 (the templates then escape it), and only absolute
http(s) URLs survive as link or image targets.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

import nh3

_SAFE_SCHEMES = frozenset({"http", "https"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SPACES = re.compile(r"\s+")
# Block boundaries become spaces, so "<p>Hi</p><p>there</p>" reads "Hi there".
_BLOCK_END = re.compile(r"(</(?:p|div|li|h[1-6]|blockquote|tr|td|th)\s*>|<br\s*/?>)", re.I)


def safe_url(url: str | None) -> str | None:
    """``url`` if it is an absolute http(s) URL without control characters, else None."""
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
    return candidate


def plain_text(value: str | None) -> str:
    """Feed text with any markup removed by nh3, entities decoded and whitespace collapsed."""
    if not value:
        return ""
    if "<" in value or "&" in value:
        value = html.unescape(nh3.clean(_BLOCK_END.sub(r"\1 ", value), tags=set()))
    return _SPACES.sub(" ", value).strip()

