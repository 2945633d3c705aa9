"""Console: send now (what would go out, a confirmation, then a queued send) and its live progress
with pause and resume.

What goes out is the dry run (``send_digest(..., dry_run=True)``, as ``digest send --dry-run``);
the send is the one ``POST /admin/send`` makes (``manual=True, queue=True``); progress is read
from the ledger (``delivery.progress``) and polled by htmx every second until the send is done;
pause and resume are ``delivery.pause``. No rule lives here.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from digest.delivery.outcomes import SendResult
from digest.delivery.pause import OPERATOR_REASON, pause_edition, resume_edition
from digest.delivery.progress import EditionProgress, edition_progress
from digest.delivery.send import send_digest
from digest.errors import (
    AlreadySentError,
    BrokerUnavailableError,
    EditionError,
    NoSuchEditionError,
)
from digest.runtime import App
from digest.store.models import MAX_ID, Cadence
from digest.web.admin import BROKER_DOWN
from digest.web.console.preview import CADENCES, cadence_of
from digest.web.console.render import fragment, page
from digest.web.console.session import Operator, csrf_checked, now_utc, signed_in
from digest.web.deps import get_app

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
# What the progress page says after a pause or resume (``?done=``); anything else says nothing.
NOTICES = {
    "paused": "Paused: no new batch is claimed; batches already with a worker finish.",
    "not-paused": "Not paused: the send had already finished or was paused already.",
    "resumed": "Resumed: the waiting batches are with the workers again.",
    "not-resumed": "Not resumed: the send had already finished or was not paused.",
    "broker-down": ("Resumed, but the Celery broker did not take the batches: they are "
                    "recorded, and reconcile (run by beat) sends them once the broker is back."),
}


def _plans(app: App) -> dict[str, SendResult]:
    """The dry run of a send by hand, per cadence."""
    return {c.value: send_digest(app, cadence=c, manual=True, dry_run=True) for c in Cadence}


def _send_page(request: Request, app: App, operator: Operator, cadence: Cadence,
               status_code: int = 200, **extra: Any) -> HTMLResponse:
    return page(request, "send_now.html", operator=operator, active="send",
                status_code=status_code, cadence=cadence.value, cadences=CADENCES,
                plans=_plans(app), **{"error": None, "notice": None, **extra})


@router.get("/admin/send-now", response_class=HTMLResponse)
def send_now_page(request: Request, cadence: str = "weekly",
                  operator: Operator = Depends(signed_in),
                  app: App = Depends(get_app)) -> HTMLResponse:
    """Who would get what now, per cadence, and the form that confirms a send of one."""
    return _send_page(request, app, operator, cadence_of(cadence))


@router.post("/admin/send-now", response_class=HTMLResponse)
async def send_now(request: Request, operator: Operator = Depends(csrf_checked),
                   app: App = Depends(get_app)) -> Response:
    """Queue the send the operator confirmed, then follow it on its progress page."""
    form = await request.form()
    cadence = cadence_of(form.get("cadence"))
    if form.get("confirm") != "yes":
        return await run_in_threadpool(
            _send_page, request, app, operator, cadence, 400,
            error="Tick the box to confirm the send; nothing was sent.")
    try:
        result = await run_in_threadpool(send_digest, app, cadence=cadence, manual=True,
                                         queue=True)
    except BrokerUnavailableError as exc:
        return await run_in_threadpool(_send_page, request, app, operator, cadence, 503,
                                       error=BROKER_DOWN.format(reason=exc))
    except AlreadySentError as exc:
        return RedirectResponse(f"/admin/sends/{exc.edition_id}", status_code=303)
    if result.edition_id is None:
        return await run_in_threadpool(_send_page, request, app, operator, cadence,
                                       notice=f"Nothing sent: {result.reason}")
    return RedirectResponse(f"/admin/sends/{result.edition_id}", status_code=303)


def _edition_id(value: int) -> int:
    if not 1 <= value <= MAX_ID:
        raise HTTPException(404, detail="no such send")
    return value


def _progress(app: App, edition_id: int) -> EditionProgress:
    try:
        return edition_progress(app, _edition_id(edition_id), now_utc())
    except NoSuchEditionError as exc:
        raise HTTPException(404, detail=str(exc)) from exc


@router.get("/admin/sends/{edition_id}", response_class=HTMLResponse)
def progress_page(request: Request, edition_id: int, operator: Operator = Depends(signed_in),
                  app: App = Depends(get_app)) -> HTMLResponse:
    """A send's progress, kept up to date by the fragment below (or the Refresh link)."""
    progress = _progress(app, edition_id)
    return page(request, "send_progress.html", operator=operator, active="send",
                edition_id=edition_id, progress=progress,
                notice=NOTICES.get(request.query_params.get("done") or ""))


@router.get("/admin/sends/{edition_id}/progress", response_class=HTMLResponse)
def progress_fragment(request: Request, edition_id: int,
                      operator: Operator = Depends(signed_in),
                      app: App = Depends(get_app)) -> HTMLResponse:
    """The progress block alone, for htmx to swap in every second while the send runs."""
    return fragment(request, "progress_fragment.html", operator=operator,
                    edition_id=edition_id, progress=_progress(app, edition_id))


@router.post("/admin/sends/{edition_id}/pause")
def pause(edition_id: int, operator: Operator = Depends(csrf_checked),
          app: App = Depends(get_app)) -> Response:
    """Stop the send claiming new batches (those in flight finish); back to its progress."""
    try:
        changed = pause_edition(app, _edition_id(edition_id), reason=OPERATOR_REASON,
                                now=now_utc())
    except NoSuchEditionError as exc:
        raise HTTPException(404, detail=str(exc)) from exc
    except EditionError:
        changed = False  # it had finished meanwhile
    done = "paused" if changed else "not-paused"
    return RedirectResponse(f"/admin/sends/{edition_id}?done={done}", status_code=303)


@router.post("/admin/sends/{edition_id}/resume")
def resume(edition_id: int, operator: Operator = Depends(csrf_checked),
           app: App = Depends(get_app)) -> Response:
    """Let the send claim batches again, handing its waiting batches to the workers."""
    done = "resumed"
    try:
        resume_edition(app, _edition_id(edition_id), now=now_utc())
    except BrokerUnavailableError:
        done = "broker-down"
    except NoSuchEditionError as exc:
        raise HTTPException(404, detail=str(exc)) from exc
    except EditionError:
        done = "not-resumed"
    return RedirectResponse(f"/admin/sends/{edition_id}?done={done}", status_code=303)
