"""The readers' pages' one script (``static/reader/timezone.js``: pre-selects the browser's
time zone), served from the package; the pages work without it."""

from __future__ import annotations

from pathlib import Path

from digest.web.static_files import package_files

__all__ = ["SCRIPT_URL", "STATIC_DIR", "router"]

STATIC_DIR = Path(__file__).resolve().parent / "static" / "reader"
SCRIPT_URL = "/static/reader/timezone.js"

router = package_files("/static/reader", STATIC_DIR,
                       {"timezone.js": "text/javascript; charset=utf-8"})
