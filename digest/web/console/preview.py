"""Console: the next digest as a reader sees it, per cadence, and a test copy to any address.

The page renders ``delivery.nextdigest`` (the same draft and message as the send); the test
copy is ``send_digest(..., to=...)``, as ``digest send --to``. The mail's HTML is shown in a
sandboxed iframe (``srcdoc``: no script, no same origin), at a desktop width and at 375 px.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from digest.delivery.nextdigest import next_digest
from digest.delivery.send import send_digest
from digest.errors import DigestError
from digest.runtime import App
from digest.store.models import Cadence
from digest.web.console.render import page
from digest.web.console.session import Operator, csrf_checked, now_utc, signed_in
from digest.web.deps import get_app

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
CADENCES = tuple(c.value for c in Cadence)


def cadence_of(value: object) -> Cadence:
    """The cadence a query or form names; weekly when it names none we know."""
    return Cadence(value) if isinstance(value, str) and value in CADENCES else Cadence.WEEKLY


def _page(request: Request, app: App, operator: Operator, cadence: Cadence,
          status_code: int = 200, **extra: Any) -> HTMLResponse:
    shown = next_digest(app, cadence, now=now_utc())
    return page(request, "preview.html", operator=operator, active="preview",
                status_code=status_code, cadence=cadence.value, cadences=CADENCES,
                shown=shown, **{"test_to": "", "test_sent": None, "test_error": None,
                                **extra})


@router.get("/admin/next", response_class=HTMLResponse)
def next_page(request: Request, cadence: str = "weekly", operator: Operator = Depends(signed_in),
              app: App = Depends(get_app)) -> HTMLResponse:
    """The next digest of ``cadence`` (weekly by default) as it would go out now."""
    return _page(request, app, operator, cadence_of(cadence))


@router.post("/admin/next/test", response_class=HTMLResponse)
async def send_test(request: Request, operator: Operator = Depends(csrf_checked),
                    app: App = Depends(get_app)) -> HTMLResponse:
    """Send one test copy of the next digest to the address in the form; the page says what
    happened (sent to whom, or why not)."""
    form = await request.form()
    cadence = cadence_of(form.get("cadence"))
    to = str(form.get("to") or "").strip()
    try:
        result = await run_in_threadpool(send_digest, app, cadence=cadence, to=to)
    except DigestError as exc:
        return await run_in_threadpool(_page, request, app, operator, cadence, 400,
                                       test_to=to, test_error=str(exc))
    if result.status != "test":
        return await run_in_threadpool(_page, request, app, operator, cadence, 409,
                                       test_to=to, test_error=result.reason or result.status)
    return await run_in_threadpool(_page, request, app, operator, cadence,
                                   test_to=to, test_sent=result.reason)
