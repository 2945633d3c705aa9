"""The readers' pages' one script (``static/reader/timezone.js``: pre-selects the browser's
time zone), served from the package; the pages work without it."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

__all__ = ["SCRIPT_URL", "STATIC_DIR", "router"]

STATIC_DIR = Path(__file__).resolve().parent / "static" / "reader"
SCRIPT_URL = "/static/reader/timezone.js"
# Only these names are served (never a path the request chose).
_FILES = {"timezone.js": "text/javascript; charset=utf-8"}

router = APIRouter(include_in_schema=False)


@router.get("/static/reader/{name}")
def static_file(name: str) -> FileResponse:
    """One of the readers' files; revalidated by ETag so an upgrade shows at once."""
    media_type = _FILES.get(name)
    if media_type is None:
        raise HTTPException(404, "no such file")
    return FileResponse(STATIC_DIR / name, media_type=media_type,
                        headers={"Cache-Control": "no-cache"})
