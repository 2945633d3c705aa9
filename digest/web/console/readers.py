"""The console's readers: search, a reader's page, add, unsubscribe and erase (with a
confirmation step). Every rule is a service's: ``readers.search``, ``readers.profile``,
``readers.additions`` and ``readers.roster`` (through ``readers.lifecycle``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from digest.delivery.reader_next import next_for_reader
from digest.errors import SubscriberError
from digest.readers.additions import add_readers
from digest.readers.profile import ReaderProfile, reader_profile_by_id
from digest.readers.roster import erase, remove
from digest.readers.search import search_readers
from digest.store.models import Cadence, SubscriberStatus
from digest.web.console.render import page
from digest.web.console.session import Operator, csrf_checked, now_utc, signed_in
from digest.web.deps import get_app

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

READERS = "/admin/readers"
_DONE = {"unsubscribed": "Unsubscribed: they get no more digests.",
         "erased": "Erased: their address, name and IP are gone and their links no longer "
                   "work; only a keyed hash of the address is kept, so no import adds them "
                   "again.",
         "nothing": "Nothing changed: the reader had already left."}
_ACTIONS = {"unsubscribe": "Unsubscribe", "erase": "Erase"}


def _field(form: Any, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _list_page(request: Request, operator: Operator, *, q: str = "", status: str = "",
               cadence: str = "", after: str = "", notice: str | None = None,
               error: str | None = None, status_code: int = 200,
               added: str = "") -> HTMLResponse:
    results = None
    try:
        results = search_readers(get_app(request), prefix=q or None, status=status or None,
                                 cadence=cadence or None, after=after or None)
    except SubscriberError as exc:
        error, status_code = str(exc), 400
    wanted = {k: v for k, v in (("q", q), ("status", status), ("cadence", cadence)) if v}
    first_url = f"{READERS}?{urlencode(wanted)}" if wanted else READERS
    next_url = None
    if results is not None and results.next_after is not None:
        next_url = f"{READERS}?{urlencode({**wanted, 'after': results.next_after})}"
    return page(request, "readers.html", operator=operator, active="readers",
                status_code=status_code, q=q, status=status, cadence=cadence, after=after,
                results=results, next_url=next_url, first_url=first_url, notice=notice,
                error=error, added=added,
                statuses=[s.value for s in SubscriberStatus],
                cadences=[c.value for c in Cadence])


@router.get(READERS, response_class=HTMLResponse)
def readers(request: Request, q: str = "", status: str = "", cadence: str = "",
            after: str = "", operator: Operator = Depends(signed_in)) -> HTMLResponse:
    """Search by address prefix (any case), filter by status and cadence, page on."""
    return _list_page(request, operator, q=q.strip(), status=status, cadence=cadence,
                      after=after)


@router.post(f"{READERS}/add", response_class=HTMLResponse)
async def add_reader(request: Request,
                     operator: Operator = Depends(csrf_checked)) -> HTMLResponse:
    """Add one reader, active at once (``digest subscribers add``)."""
    form = await request.form()
    email, name = _field(form, "email"), _field(form, "name")
    if not email:
        return await run_in_threadpool(lambda: _list_page(
            request, operator, error="Enter the address to add.", status_code=400))
    report = await run_in_threadpool(add_readers, get_app(request), [email], name=name or None)
    if report.refused:
        return await run_in_threadpool(lambda: _list_page(
            request, operator, error=report.describe(), status_code=400, added=email))
    found = report.added[0] if report.added else email
    return await run_in_threadpool(lambda: _list_page(request, operator, q=found,
                                                      notice=report.describe()))


def _profile_or_404(request: Request, reader_id: int) -> ReaderProfile:
    profile = reader_profile_by_id(get_app(request), reader_id)
    if profile is None:
        raise HTTPException(404, detail="no such reader")
    return profile


@router.get(READERS + "/{reader_id:int}", response_class=HTMLResponse)
def reader(request: Request, reader_id: int, done: str = "",
           operator: Operator = Depends(signed_in)) -> HTMLResponse:
    """One reader: consent record, preferences, editions and their outcome, provider events."""
    profile = _profile_or_404(request, reader_id)
    return page(request, "reader.html", operator=operator, active="readers", reader=profile,
                notice=_DONE.get(done))


@router.get(READERS + "/{reader_id:int}/next", response_class=HTMLResponse)
def reader_next(request: Request, reader_id: int,
                operator: Operator = Depends(signed_in)) -> HTMLResponse:
    """What this reader gets next and when, on their own clock (``digest preview --reader``)."""
    profile = _profile_or_404(request, reader_id)
    try:
        shown = next_for_reader(get_app(request), profile.email or "", now=now_utc())
    except SubscriberError as exc:
        return page(request, "reader_next.html", operator=operator, active="readers",
                    reader=profile, shown=None, error=str(exc), status_code=409)
    return page(request, "reader_next.html", operator=operator, active="readers",
                reader=profile, shown=shown, error=None)


async def _act(request: Request, reader_id: int, operator: Operator, action: str) -> Response:
    """The confirmation page first; the action only with ``confirm=yes`` from it."""
    profile = await run_in_threadpool(_profile_or_404, request, reader_id)
    form = await request.form()
    if _field(form, "confirm") != "yes":
        return page(request, "reader_confirm.html", operator=operator, active="readers",
                    reader=profile, action=action, label=_ACTIONS[action])
    change = erase if action == "erase" else remove
    result = await run_in_threadpool(change, get_app(request), reader_id)
    done = ("erased" if action == "erase" else "unsubscribed") if result.removed else "nothing"
    return RedirectResponse(f"{READERS}/{reader_id}?done={done}", status_code=303)


@router.post(READERS + "/{reader_id:int}/unsubscribe")
async def unsubscribe(request: Request, reader_id: int,
                      operator: Operator = Depends(csrf_checked)) -> Response:
    """Unsubscribe the reader (after the confirmation step)."""
    return await _act(request, reader_id, operator, "unsubscribe")


@router.post(READERS + "/{reader_id:int}/erase")
async def erase_reader(request: Request, reader_id: int,
                       operator: Operator = Depends(csrf_checked)) -> Response:
    """Erase the reader for good, GDPR (after the confirmation step)."""
    return await _act(request, reader_id, operator, "erase")
