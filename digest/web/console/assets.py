"""The console's static files (its stylesheet and the vendored htmx), served from the package
so the console works on a machine without internet. Public: the sign-in page needs them."""

from __future__ import annotations

from pathlib import Path

from digest.web.static_files import package_files

__all__ = ["STATIC_DIR", "router"]

STATIC_DIR = Path(__file__).resolve().parent / "static"

router = package_files("/admin/static", STATIC_DIR, {
    "console.css": "text/css; charset=utf-8",
    "htmx.min.js": "text/javascript; charset=utf-8",
    "htmx.LICENSE": "text/plain; charset=utf-8",
})
