"""The console's CSV import (upload -> preview -> confirm -> result) and export.

The preview and the import are one decision (``csvio.plan_import``): the confirmation carries
the preview's fingerprint, and ``csvio.import_csv`` writes nothing if the file would now be
imported differently. Between the two steps the file waits in Redis (``readers.uploads``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from digest.errors import SubscriberError
from digest.readers.csvexport import export_chunks
from digest.readers.csvio import ImportPlan, import_csv, plan_import, read_text
from digest.readers.uploads import HeldFile, HeldUploads
from digest.web.console.render import page
from digest.web.console.session import Operator, csrf_checked, signed_in
from digest.web.deps import get_app

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

IMPORT = "/admin/readers/import"
SHOWN = 200  # rows of each kind listed on the preview and result pages


def _held(request: Request) -> HeldUploads:
    """One store of held uploads per web app, on the site's Redis."""
    state = request.app.state
    if getattr(state, "held_uploads", None) is None:
        state.held_uploads = HeldUploads(get_app(request).settings.rate_limit_url)
    held: HeldUploads = state.held_uploads
    return held


def _upload_page(request: Request, operator: Operator, error: str | None = None,
                 status_code: int = 200) -> HTMLResponse:
    return page(request, "import_upload.html", operator=operator, active="readers",
                error=error, status_code=status_code)


def _preview(request: Request, operator: Operator, held: HeldFile, plan: ImportPlan,
             error: str | None = None, status_code: int = 200) -> HTMLResponse:
    return page(request, "import_preview.html", operator=operator, active="readers",
                held=held, plan=plan, fingerprint=plan.fingerprint(), shown=SHOWN,
                error=error, status_code=status_code)


def _plan(request: Request, held: HeldFile) -> ImportPlan:
    return plan_import(get_app(request), read_text(held.data), name=held.name)


@router.get(IMPORT, response_class=HTMLResponse)
def import_form(request: Request, operator: Operator = Depends(signed_in)) -> HTMLResponse:
    """Choose the file."""
    return _upload_page(request, operator)


@router.post(IMPORT, response_class=HTMLResponse)
async def import_preview(request: Request,
                         operator: Operator = Depends(csrf_checked)) -> HTMLResponse:
    """Read the upload and show, row by row, what would be imported and what skipped, and why;
    nothing is written."""
    form = await request.form()
    upload: Any = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return _upload_page(request, operator, "Choose a CSV file to import.", 400)
    data = await upload.read()
    if not data.strip():
        return _upload_page(request, operator, f"{upload.filename} is empty.", 400)
    name = upload.filename
    try:  # decided first: a file that cannot be read is never kept
        plan = await run_in_threadpool(lambda: plan_import(get_app(request), read_text(data),
                                                           name=name))
        held = await run_in_threadpool(_held(request).hold, name, data)
    except SubscriberError as exc:
        return _upload_page(request, operator, str(exc), 400)
    return _preview(request, operator, held, plan)


@router.post(IMPORT + "/confirm", response_class=HTMLResponse)
async def import_confirm(request: Request,
                         operator: Operator = Depends(csrf_checked)) -> HTMLResponse:
    """Import exactly what the preview showed, or nothing (and the new preview) if the list
    changed since."""
    form = await request.form()
    token, expect = str(form.get("token") or ""), str(form.get("fingerprint") or "")
    store = _held(request)
    try:
        held = await run_in_threadpool(store.get, token)
    except SubscriberError as exc:
        return _upload_page(request, operator, str(exc), 503)
    if held is None:
        return _upload_page(request, operator, "That upload is no longer here (it is kept for "
                            "an hour, and only until it is imported): choose the file again.",
                            410)
    app = get_app(request)
    try:
        report = await run_in_threadpool(lambda: import_csv(
            app, read_text(held.data), name=held.name, expect=expect))
    except SubscriberError as exc:
        try:
            plan = await run_in_threadpool(_plan, request, held)
        except SubscriberError as again:
            return _upload_page(request, operator, str(again), 400)
        return _preview(request, operator, held, plan, error=str(exc), status_code=409)
    store.drop(token)
    return page(request, "import_result.html", operator=operator, active="readers",
                report=report, shown=SHOWN)


@router.get("/admin/readers/export.csv")
def export(request: Request, operator: Operator = Depends(signed_in)) -> StreamingResponse:
    """Every reader with every field, streamed a page at a time."""
    return StreamingResponse(export_chunks(get_app(request)),
                             media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition":
                                      'attachment; filename="readers.csv"',
                                      "Cache-Control": "no-store"})
