"""Operator and provider routes of the delivery engine: preview, send, pause and resume,
progress, stats, Event Webhook (followed by the complaint breaker).

Each route parses the request, calls one service function and shapes the answer.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from digest.delivery.breaker import check_editions
from digest.delivery.editions import preview
from digest.delivery.pause import OPERATOR_REASON, pause_edition, resume_edition
from digest.delivery.progress import edition_progress
from digest.delivery.resend import resend_edition
from digest.delivery.send import send_digest
from digest.delivery.stats import stats
from digest.errors import (
    AlreadySentError,
    BrokerUnavailableError,
    EditionError,
    NoSuchEditionError,
    SubscriberError,
)
from digest.readers.events import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookRejected,
    handle_sendgrid_webhook,
)
from digest.runtime import App
from digest.store.models import MAX_ID, Cadence
from digest.web.deps import get_app, require_admin

log = logging.getLogger(__name__)
router = APIRouter()
admin = [Depends(require_admin)]
BROKER_DOWN = ("the Celery broker did not take the batches ({reason}); they are recorded, and "
               "reconcile (run by beat) sends them once the broker is back: "
               "follow them at GET /admin/stats")


def _broker_down(exc: BrokerUnavailableError) -> HTTPException:
    return HTTPException(503, detail=BROKER_DOWN.format(reason=exc))


@router.get("/admin/preview", response_class=HTMLResponse, dependencies=admin,
            summary="The next digest as it would be sent now")
def admin_preview(cadence: Cadence = Cadence.WEEKLY, app: App = Depends(get_app)) -> HTMLResponse:
    """The next digest's HTML, as a reader would see it (nothing is claimed)."""
    rendered = preview(app, cadence=cadence)
    if rendered is None:
        return HTMLResponse("<p>Nothing new to send: no posts since the last digest.</p>")
    return HTMLResponse(rendered.html)


@router.post("/admin/send", dependencies=admin,
             summary="Send now, through the workers, the posts readers have not received",
             responses={400: {"description": "An unknown parameter value (named)"},
                        409: {"description": "Another send just claimed the same posts"},
                        503: {"description": "The broker is down; reconcile sends it later"}})
def admin_send(cadence: Cadence = Cadence.WEEKLY, force: bool = False,
               app: App = Depends(get_app)) -> dict[str, Any]:
    """Queue a digest of the posts this cadence's readers have not received (as `digest
    send`); with nothing new, status "empty" and the reason. Progress at /admin/stats."""
    if force:
        raise HTTPException(400, detail=FORCE_GONE)
    try:
        result = send_digest(app, cadence=cadence, manual=True, queue=True)
    except BrokerUnavailableError as exc:
        raise _broker_down(exc) from exc
    except AlreadySentError as exc:
        raise HTTPException(409, detail={"message": str(exc), "edition_id": exc.edition_id}) \
            from exc
    return result.as_dict()


@router.post("/admin/resend", dependencies=admin,
             summary="Send a past edition again, only to readers who did not get it",
             responses={400: {"description": "A bad `to` or an edition still being sent"},
                        404: {"description": "No such edition"},
                        503: {"description": "The broker is down; reconcile sends it later"}})
def admin_resend(edition: Annotated[int, Query(ge=1, le=MAX_ID)], to: str | None = None,
                 app: App = Depends(get_app)) -> dict[str, Any]:
    """Queue edition ``edition`` for the readers who did not get it (or only ``to``)."""
    try:
        result = resend_edition(app, edition, to=to, queue=True)
    except BrokerUnavailableError as exc:
        raise _broker_down(exc) from exc
    except (EditionError, SubscriberError) as exc:
        status = 404 if isinstance(exc, NoSuchEditionError) else 400
        raise HTTPException(status, detail=_http_words(str(exc))) from exc
    return result.as_dict()


FORCE_GONE = ("force=true is no longer accepted: POST /admin/send always sends the posts the "
              "cadence's readers have not received; to send a past edition to readers who did "
              "not get it, POST /admin/resend?edition=N (optionally &to=EMAIL)")


def _http_words(message: str) -> str:
    """A service message in the API's terms: parameters and routes, not CLI commands."""
    return (message.replace("`digest stats`", "GET /admin/stats")
            .replace("`digest subscribers list`", "GET /admin/subscribers/export"))


@router.get("/admin/stats", dependencies=admin,
            summary="Reader counts, recent digests with their readers and batches, feed failures")
def admin_stats(app: App = Depends(get_app)) -> dict[str, Any]:
    """Reader counts; per recent digest its readers (planned, handed over, delivered, bounced,
    complained, failed, in doubt) and ledger batches; feed failures."""
    return stats(app).as_dict()


EditionId = Annotated[int, Path(ge=1, le=MAX_ID, description="The edition's number")]


def _edition_error(exc: EditionError) -> HTTPException:
    status = 404 if isinstance(exc, NoSuchEditionError) else 409
    return HTTPException(status, detail=_http_words(str(exc)))


@router.post("/admin/editions/{edition_id}/pause", dependencies=admin,
             summary="Pause a running send: no new batch is claimed until it is resumed",
             responses={404: {"description": "No such edition"},
                        409: {"description": "The edition is not being sent"}})
def admin_pause(edition_id: EditionId, app: App = Depends(get_app)) -> dict[str, Any]:
    """Pause edition ``edition_id`` (batches already being sent finish); ``paused`` is false
    when it was paused already. Its progress follows."""
    now = datetime.now(UTC)
    try:
        paused = pause_edition(app, edition_id, reason=OPERATOR_REASON, now=now)
        progress = edition_progress(app, edition_id, now)
    except EditionError as exc:
        raise _edition_error(exc) from exc
    return {"paused": paused, "progress": progress.as_dict()}


@router.post("/admin/editions/{edition_id}/resume", dependencies=admin,
             summary="Resume a paused send: its pending batches go to the workers",
             responses={404: {"description": "No such edition"},
                        409: {"description": "The edition is not being sent"},
                        503: {"description": "The broker is down; reconcile sends it later"}})
def admin_resume(edition_id: EditionId, app: App = Depends(get_app)) -> dict[str, Any]:
    """Resume edition ``edition_id``: ``queued`` is how many batches went to the workers (0
    when it was not paused). Its progress follows."""
    now = datetime.now(UTC)
    try:
        queued = resume_edition(app, edition_id, now=now)
        progress = edition_progress(app, edition_id, datetime.now(UTC))
    except BrokerUnavailableError as exc:
        raise _broker_down(exc) from exc
    except EditionError as exc:
        raise _edition_error(exc) from exc
    return {"queued": queued, "progress": progress.as_dict()}


@router.get("/admin/editions/{edition_id}/progress", dependencies=admin,
            summary="A send's progress: batches, readers handed over, failures, readers/s",
            responses={404: {"description": "No such edition"}})
def admin_progress(edition_id: EditionId, app: App = Depends(get_app)) -> dict[str, Any]:
    """Where edition ``edition_id`` stands, from the ledger and the per-reader record."""
    try:
        return edition_progress(app, edition_id, datetime.now(UTC)).as_dict()
    except EditionError as exc:
        raise _edition_error(exc) from exc


def _breaker(app: App, edition_ids: frozenset[int]) -> None:
    """The complaint breaker after a webhook's spam reports; its failure never loses events
    (they are applied), so it is logged and the next complaint checks again."""
    try:
        check_editions(app, edition_ids, now=datetime.now(UTC))
    except Exception:
        log.exception("complaint breaker check failed for editions %s", sorted(edition_ids))


@router.post("/webhooks/sendgrid",
             summary="SendGrid Event Webhook (signed): bounces and complaints suppress readers")
async def sendgrid_webhook(request: Request, app: App = Depends(get_app)) -> dict[str, int]:
    """SendGrid's signed Event Webhook (verified over the raw body before anything else)."""
    body = await request.body()
    try:
        report = await run_in_threadpool(
            handle_sendgrid_webhook, app, body, request.headers.get(SIGNATURE_HEADER),
            request.headers.get(TIMESTAMP_HEADER))
    except WebhookRejected as exc:
        raise HTTPException(exc.status, detail=str(exc)) from exc
    if report.complained:
        await run_in_threadpool(_breaker, app, report.complained)
    return {"applied": report.applied, "duplicates": report.duplicates,
            "skipped": report.skipped}
