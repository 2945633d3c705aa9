"""A post's identity, the key it is stored once under: the guid, else the link without
tracking parameters, else a hash of title and content.
"""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from digest.store.bounded import clean

_IDENTITY_MAX = 255


# Query parameters that only track the reader; they never change which post a link names.
_TRACKING_PARAMS = frozenset(
    {"fbclid", "gclid", "dclid", "msclkid", "yclid", "igshid", "mc_cid", "mc_eid", "_hsenc",
     "_hsmi", "mkt_tok", "wt_mc", "wt_zmc", "ref_src", "cmpid", "ncid", "sr_share"}
)


_TRACKING_PREFIXES = ("utm_", "pk_", "mtm_")


def clean_link(link: str) -> str:
    """``link`` without tracking query parameters (utm_*, fbclid, Medium's source=rss…)."""
    parts = urlsplit(link.strip())
    if not parts.query:
        return link.strip()
    kept = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not _is_tracking(k, v)
    ]
    return urlunsplit(parts._replace(query=urlencode(kept, doseq=True)))


def entry_identity(guid: str | None, link: str | None, title: str, content: str) -> str:
    """guid/id, else the link without tracking parameters, else a hash of title and content."""
    if guid and guid.strip():
        return _bounded(guid.strip())
    if link and link.strip():
        return _bounded(clean_link(link))
    digest = hashlib.sha256(f"{title}\x00{content}".encode()).hexdigest()
    return f"sha256:{digest}"


def _is_tracking(key: str, value: str) -> bool:
    low = key.lower()
    if low in _TRACKING_PARAMS or low.startswith(_TRACKING_PREFIXES):
        return True
    return low == "source" and value.lower().startswith("rss")


def _bounded(value: str) -> str:
    value = clean(value)
    if len(value) <= _IDENTITY_MAX:
        return value
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()
