"""Console: the editions' history, one edition's content and outcome, and "resend to those who
did not get it" (``resend_edition``, as ``digest resend``), after a confirmation.

The history and the edition come from ``delivery.history``; a resend is queued to the workers
and followed on the send's progress page.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from digest.delivery.history import edition_detail, edition_history
from digest.delivery.resend import resend_edition
from digest.errors import BrokerUnavailableError, DigestError, NoSuchEditionError
from digest.runtime import App
from digest.store.models import MAX_ID
from digest.web.admin import BROKER_DOWN
from digest.web.console.render import page
from digest.web.console.session import Operator, csrf_checked, signed_in
from digest.web.deps import get_app

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.get("/admin/editions", response_class=HTMLResponse)
def editions_page(request: Request, before: str | None = None,
                  operator: Operator = Depends(signed_in),
                  app: App = Depends(get_app)) -> HTMLResponse:
    """Editions newest first, a page at a time (``before``: the last id of the page before;
    anything but an id shows the first page)."""
    after = int(before) if before and before.isdigit() and 1 <= int(before) <= MAX_ID else None
    history = edition_history(app, before=after)
    return page(request, "editions.html", operator=operator, active="editions",
                history=history, first_page=after is None)


def _edition_page(request: Request, app: App, operator: Operator, edition_id: int,
                  status_code: int = 200, **extra: Any) -> HTMLResponse:
    if not 1 <= edition_id <= MAX_ID:
        raise HTTPException(404, detail="no such edition")
    try:
        detail = edition_detail(app, edition_id)
    except NoSuchEditionError as exc:
        raise HTTPException(404, detail=str(exc)) from exc
    return page(request, "edition.html", operator=operator, active="editions",
                status_code=status_code, detail=detail, edition=detail.summary,
                **{"error": None, "notice": None, **extra})


@router.get("/admin/editions/{edition_id}", response_class=HTMLResponse)
def edition_page(request: Request, edition_id: int, operator: Operator = Depends(signed_in),
                 app: App = Depends(get_app)) -> HTMLResponse:
    """What the edition held and what became of it, reader by reader."""
    return _edition_page(request, app, operator, edition_id)


@router.post("/admin/editions/{edition_id}/resend-missing", response_class=HTMLResponse)
async def resend_missing(request: Request, edition_id: int,
                         operator: Operator = Depends(csrf_checked),
                         app: App = Depends(get_app)) -> Response:
    """Queue the edition for the readers who did not get it, once the operator confirmed."""
    form = await request.form()
    if form.get("confirm") != "yes":
        return await run_in_threadpool(
            _edition_page, request, app, operator, edition_id, 400,
            error="Tick the box to confirm the resend; nothing was sent.")
    try:
        result = await run_in_threadpool(resend_edition, app, edition_id, queue=True)
    except BrokerUnavailableError as exc:
        return await run_in_threadpool(_edition_page, request, app, operator, edition_id, 503,
                                       error=BROKER_DOWN.format(reason=exc))
    except NoSuchEditionError as exc:
        raise HTTPException(404, detail=str(exc)) from exc
    except DigestError as exc:
        return await run_in_threadpool(_edition_page, request, app, operator, edition_id, 409,
                                       error=str(exc))
    if result.batches == 0:
        return await run_in_threadpool(_edition_page, request, app, operator, edition_id,
                                       notice=f"Nothing sent: {result.reason}")
    return RedirectResponse(f"/admin/sends/{edition_id}", status_code=303)
