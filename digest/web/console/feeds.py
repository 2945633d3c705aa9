"""The console's feeds: the stored feeds with their health, add, remove (with a confirmation
step) and poll now with its result. The rules are ``feeds.registry``'s, as for the CLI's
``digest feeds list|add|remove``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from digest.errors import FeedError
from digest.feeds.registry import StoredFeed, add_feed, list_feeds, poll_now, remove_feed
from digest.feeds.report import PollReport
from digest.web.console.render import page
from digest.web.console.session import Operator, csrf_checked, signed_in
from digest.web.deps import get_app

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

FEEDS = "/admin/feeds"
_BAD = {"failed", "gone", "skipped"}


def _feeds_page(request: Request, operator: Operator, *, report: PollReport | None = None,
                notice: str | None = None, error: str | None = None, url: str = "",
                status_code: int = 200) -> HTMLResponse:
    feeds = list_feeds(get_app(request))
    return page(request, "feeds.html", operator=operator, active="feeds", feeds=feeds,
                report=report, report_ok=report is not None and report.outcome not in _BAD,
                notice=notice, error=error, url=url, status_code=status_code)


@router.get(FEEDS, response_class=HTMLResponse)
def feeds(request: Request, removed: str = "",
          operator: Operator = Depends(signed_in)) -> HTMLResponse:
    """Every stored feed with its health: last poll, failures and backoff, WebSub lease."""
    said = "The feed and its posts were removed." if removed == "1" else None
    return _feeds_page(request, operator, notice=said)


@router.post(FEEDS + "/add", response_class=HTMLResponse)
async def add(request: Request, operator: Operator = Depends(csrf_checked)) -> HTMLResponse:
    """Store a feed by polling it once; a feed whose first poll fails is not kept."""
    form = await request.form()
    url = str(form.get("url") or "").strip()
    if not url:
        return await run_in_threadpool(lambda: _feeds_page(
            request, operator, error="Enter the feed's URL.", status_code=400))
    report = await run_in_threadpool(lambda: add_feed(get_app(request), url, remote_only=True))
    code = 400 if report.outcome in {"failed", "gone"} else 200
    return await run_in_threadpool(lambda: _feeds_page(
        request, operator, report=report, url=url if code == 400 else "", status_code=code))


def _stored(request: Request, feed_id: int) -> StoredFeed:
    found = next((f for f in list_feeds(get_app(request)) if f.id == feed_id), None)
    if found is None:
        raise HTTPException(404, detail="no such feed")
    return found


@router.post(FEEDS + "/{feed_id:int}/poll", response_class=HTMLResponse)
async def poll(request: Request, feed_id: int,
               operator: Operator = Depends(csrf_checked)) -> HTMLResponse:
    """Poll this feed now (backoff or not) and show what came of it."""
    try:
        report = await run_in_threadpool(poll_now, get_app(request), feed_id)
    except FeedError as exc:
        raise HTTPException(404, detail=exc.reason) from exc
    return await run_in_threadpool(lambda: _feeds_page(request, operator, report=report))


@router.post(FEEDS + "/{feed_id:int}/remove")
async def remove(request: Request, feed_id: int,
                 operator: Operator = Depends(csrf_checked)) -> Response:
    """The confirmation page first; with ``confirm=yes`` the feed and its posts go."""
    feed = await run_in_threadpool(_stored, request, feed_id)
    form = await request.form()
    if str(form.get("confirm") or "") != "yes":
        return page(request, "feed_confirm.html", operator=operator, active="feeds", feed=feed)
    try:
        await run_in_threadpool(remove_feed, get_app(request), str(feed_id))
    except FeedError as exc:
        why = exc.reason
        return await run_in_threadpool(lambda: _feeds_page(
            request, operator, error=why, status_code=409))
    return RedirectResponse(f"{FEEDS}?removed=1", status_code=303)
