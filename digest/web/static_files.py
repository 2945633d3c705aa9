"""A router serving a fixed set of files from a directory of the package (never a path the
request chose), revalidated by ETag so an upgrade shows at once."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

__all__ = ["package_files"]


def package_files(prefix: str, directory: Path, files: Mapping[str, str]) -> APIRouter:
    """``GET {prefix}/{name}`` for each ``name -> media type`` of ``files`` in ``directory``."""
    router = APIRouter(include_in_schema=False)

    @router.get(prefix + "/{name}")
    def static_file(name: str) -> FileResponse:
        media_type = files.get(name)
        if media_type is None:
            raise HTTPException(404, "no such file")
        return FileResponse(directory / name, media_type=media_type,
                            headers={"Cache-Control": "no-cache"})

    return router
