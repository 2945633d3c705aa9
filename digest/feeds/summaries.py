"""Reduce a post's HTML to what a digest shows: a short plain-text summary, a thumbnail and a
reading time.

Feed HTML is untrusted and noisy: scripts, styles, embeds, tracking pixels, and boilerplate
endings that blog platforms append (" […]", "Continue reading →", "The post X appeared first on
Y."). None of that may reach an email, so the text is rebuilt from the parsed document (never
with regexes over markup), then cut at a sentence or word boundary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

from digest.feeds.sanitize import safe_url

__all__ = ["Summary", "html_to_text", "reading_minutes", "summarize", "thumbnail", "truncate"]

WORDS_PER_MINUTE = 230
CJK_CHARS_PER_MINUTE = 500
_SKIP = frozenset({"script", "style", "noscript", "template", "iframe", "object", "svg",
                   "head", "title", "form", "select", "button", "textarea"})
_VOID = frozenset({"br", "img", "hr", "input", "meta", "link", "source", "wbr", "area", "col",
                   "embed", "param", "track"})
_BLOCK = frozenset({"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6",
                    "blockquote", "pre", "tr", "td", "th", "table", "section", "article",
                    "figure", "figcaption", "header", "footer", "hr", "dd", "dt", "aside"})
_TRACKERS = ("pixel.wp.com", "stats.wordpress.com", "feeds.feedburner.com/~r",
             "feedproxy.google.com/~r", "/b.gif", "gravatar.com", "pixel.", "/pixel",
             "doubleclick.net", "mf.gif", "/beacon")
_ENDINGS = [
    re.compile(r"\s*The post .{1,300}? appeared first on .{1,200}?\.?\s*$", re.S),
    re.compile(r"\s*(?:Continue reading|Read more|Read the full (?:post|article)|Keep reading)"
               r"\b.{0,200}$", re.S | re.I),
    re.compile(r"\s*[\[(]\s*(?:…|\.\.\.|more…?|&hellip;)\s*[\])]\s*$", re.I),
]
_SPACES = re.compile(r"\s+")
_SENTENCE_END = re.compile("[.!?\u2026\u3002\uff01\uff1f][\"'\u201d\u2019)\\]]*$")
_CJK_STOPS = re.compile("[\u3002\uff01\uff1f!?.]")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")


@dataclass(frozen=True)
class Summary:
    """What the digest shows for one post."""

    text: str
    thumbnail_url: str | None
    reading_minutes: int
    full_text: str = field(repr=False)


def summarize(
    content_html: str,
    description_html: str = "",
    *,
    words: int = 55,
    media_thumbnail: str | None = None,
) -> Summary:
    """Summary text (about ``words`` words), thumbnail and reading time for one post."""
    full = html_to_text(content_html or description_html)
    excerpt = html_to_text(description_html) if description_html else ""
    source = full or excerpt
    return Summary(
        text=truncate(source, words),
        thumbnail_url=_safe_image(media_thumbnail) or thumbnail(content_html),
        reading_minutes=reading_minutes(full or excerpt),
        full_text=full,
    )


def html_to_text(markup: str) -> str:
    """Plain text of ``markup``: no tags, scripts or styles; entities decoded; one space."""
    parser = _TextParser()
    parser.feed(markup)
    parser.close()
    text = _SPACES.sub(" ", "".join(parser.parts)).strip()
    return _strip_endings(text)


def truncate(text: str, words: int) -> str:
    """Cut ``text`` to about ``words`` words, at a sentence end if one is near, else a word."""
    tokens = text.split()
    cjk = len(_CJK.findall(text)) > len(text) // 4
    if cjk:
        limit = words * 3  # about as much to read as ``words`` English words
        if len(text) <= limit:
            return text
        cut = text[:limit]
        ends = [m.end() for m in _CJK_STOPS.finditer(cut)]
        if ends and ends[-1] >= limit // 2:
            return cut[: ends[-1]]
        return cut.rstrip() + "…"
    if len(tokens) <= words:
        return _cap(text, words)
    head = tokens[:words]
    for i in range(len(head) - 1, words // 2 - 1, -1):
        if _SENTENCE_END.search(head[i]):
            return _cap(" ".join(head[: i + 1]), words)
    return _cap(" ".join(head).rstrip(",;:-\u2013\u2014") + " …", words)


def _cap(text: str, words: int) -> str:
    """A hard length limit, for "words" that are really URLs or junk without spaces."""
    limit = words * 12
    return text if len(text) <= limit else text[:limit].rstrip() + "…"


def reading_minutes(text: str) -> int:
    """Minutes to read ``text`` (at least 1)."""
    cjk = len(_CJK.findall(text))
    words = len(text.split())
    minutes = words / WORDS_PER_MINUTE + cjk / CJK_CHARS_PER_MINUTE
    return max(1, round(minutes))


def thumbnail(content_html: str) -> str | None:
    """The first content image that is neither a 1x1 tracking pixel nor a gravatar."""
    parser = _TextParser()
    parser.feed(content_html)
    parser.close()
    for src, width, height in parser.images:
        if _tiny(width) or _tiny(height):
            continue
        url = _safe_image(src)
        if url:
            return url
    return None


def _safe_image(src: str | None) -> str | None:
    """An http(s) image URL that is not a known tracker or avatar, else None."""
    url = safe_url(src)
    if url is None or any(marker in url.lower() for marker in _TRACKERS):
        return None
    return url


def _tiny(size: str | None) -> bool:
    digits = (size or "").strip().removesuffix("px")
    return digits.isdigit() and int(digits) <= 2


def _strip_endings(text: str) -> str:
    changed = True
    while changed:
        changed = False
        for pattern in _ENDINGS:
            shorter = pattern.sub("", text)
            if shorter != text:
                text, changed = shorter.rstrip(), True
    return text


class _TextParser(HTMLParser):
    """Collects visible text and images; skips the contents of scripts, styles and embeds."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.images: list[tuple[str, str | None, str | None]] = []
        self._skipping: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP and tag not in _VOID:
            self._skipping.append(tag)
            return
        if tag in _BLOCK:
            self.parts.append(" ")
        if tag == "img" and not self._skipping:
            values = dict(attrs)
            self.images.append(
                (values.get("src") or "", values.get("width"), values.get("height"))
            )

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            return
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if self._skipping:
            if tag == self._skipping[-1]:
                self._skipping.pop()
            return
        if tag in _BLOCK:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)
