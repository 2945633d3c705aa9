"""The console's static files (its stylesheet and the vendored htmx), served from the package
so the console works on a machine without internet. Public: the sign-in page needs them."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

__all__ = ["STATIC_DIR", "router"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
# Only these names are served (never a path the request chose).
_FILES = {
    "console.css": "text/css; charset=utf-8",
    "htmx.min.js": "text/javascript; charset=utf-8",
    "htmx.LICENSE": "text/plain; charset=utf-8",
}

router = APIRouter(include_in_schema=False)


@router.get("/admin/static/{name}")
def static_file(name: str) -> FileResponse:
    """One of the console's files; revalidated by ETag so an upgrade shows at once."""
    media_type = _FILES.get(name)
    if media_type is None:
        raise HTTPException(404, "no such file")
    return FileResponse(STATIC_DIR / name, media_type=media_type,
                        headers={"Cache-Control": "no-cache"})
