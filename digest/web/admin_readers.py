"""Operator endpoints for the reader list: CSV import and export (bearer ADMIN_TOKEN)."""

from __future__ import annotations

import io
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from digest.errors import SubscriberError
from digest.readers import csvexport, csvio
from digest.web.deps import get_app, require_admin

__all__ = ["router"]

router = APIRouter(prefix="/admin/subscribers", tags=["admin"],
                   dependencies=[Depends(require_admin)])


@router.post("/import", summary="Import readers from a CSV body (Jetpack, Mailchimp, plain)")
async def import_subscribers(request: Request, filename: str = "upload.csv") -> dict[str, Any]:
    """Import the CSV sent as the request body; answers with what was imported and skipped."""
    try:
        stream = csvio.read_text(await request.body())
        # Off the event loop: a large file is many database round trips.
        report = await run_in_threadpool(csvio.import_csv, get_app(request), stream,
                                         name=filename)
    except SubscriberError as exc:
        raise HTTPException(422, str(exc)) from exc
    return report.as_dict()


@router.get("/export", summary="Every reader with every field, as CSV")
def export_subscribers(request: Request) -> Response:
    """The whole list as a CSV download."""
    out = io.StringIO()
    csvexport.export_csv(get_app(request), out)
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="subscribers.csv"'})
