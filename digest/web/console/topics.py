"""The console's topics: the feeds' categories with their posts and readers, and the forms to
rename, merge, hide and show them. The rules are ``feeds.topic_catalog``'s, as for the CLI's
``digest topics ...``."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from digest.errors import NoSuchTopicError, TopicError
from digest.feeds.topic_catalog import (
    hide_topic,
    list_topics,
    merge_topic,
    rename_topic,
    unhide_topic,
    unmerge_topic,
)
from digest.store.sessions import transaction
from digest.web.console.render import page
from digest.web.console.session import Operator, csrf_checked, signed_in
from digest.web.deps import get_app

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

TOPICS = "/admin/topics"
_DONE = {"renamed": "The topic was renamed.", "merged": "The topic was merged.",
         "unmerged": "The topic stands on its own again.", "hidden": "The topic is hidden: "
         "its posts go to every reader.", "shown": "The topic is shown again."}


def _topics_page(request: Request, operator: Operator, *, notice: str | None = None,
                 error: str | None = None, status_code: int = 200) -> HTMLResponse:
    with get_app(request).sessions() as session:
        topics = list_topics(session)
    choices = [t for t in topics if t.merged_into_id is None]
    return page(request, "topics.html", operator=operator, active="topics", topics=topics,
                choices=choices, notice=notice, error=error, status_code=status_code)


@router.get(TOPICS, response_class=HTMLResponse)
def topics(request: Request, done: str = "",
           operator: Operator = Depends(signed_in)) -> HTMLResponse:
    """Every topic with its posts and the active readers following it."""
    return _topics_page(request, operator, notice=_DONE.get(done))


async def _change(request: Request, operator: Operator, done: str,
                  change: Callable[[Session, dict[str, str]], object]) -> Response:
    """Apply one catalog change in a transaction; back to the list, or the list with why not."""
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}

    def run() -> None:
        with transaction(get_app(request).sessions) as session:
            change(session, form)

    try:
        await run_in_threadpool(run)
    except NoSuchTopicError as exc:
        raise HTTPException(404, detail=str(exc)) from exc
    except TopicError as exc:
        why = str(exc)
        return await run_in_threadpool(lambda: _topics_page(
            request, operator, error=why, status_code=400))
    return RedirectResponse(f"{TOPICS}?done={done}", status_code=303)


def _id(form: dict[str, str], name: str) -> int:
    text = form.get(name, "").strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        raise TopicError("choose a topic to merge into")
    return int(text)


@router.post(TOPICS + "/{topic_id:int}/rename")
async def rename(request: Request, topic_id: int,
                 operator: Operator = Depends(csrf_checked)) -> Response:
    """Give the topic the name readers see."""
    return await _change(request, operator, "renamed",
                         lambda s, f: rename_topic(s, topic_id, f.get("name", "")))


@router.post(TOPICS + "/{topic_id:int}/merge")
async def merge(request: Request, topic_id: int,
                operator: Operator = Depends(csrf_checked)) -> Response:
    """Merge the topic into the one chosen; a cycle is refused."""
    return await _change(request, operator, "merged",
                         lambda s, f: merge_topic(s, topic_id, _id(f, "into")))


@router.post(TOPICS + "/{topic_id:int}/unmerge")
async def unmerge(request: Request, topic_id: int,
                  operator: Operator = Depends(csrf_checked)) -> Response:
    """Undo the topic's merge."""
    return await _change(request, operator, "unmerged", lambda s, f: unmerge_topic(s, topic_id))


@router.post(TOPICS + "/{topic_id:int}/hide")
async def hide(request: Request, topic_id: int,
               operator: Operator = Depends(csrf_checked)) -> Response:
    """Hide the topic: its posts go to everyone."""
    return await _change(request, operator, "hidden", lambda s, f: hide_topic(s, topic_id))


@router.post(TOPICS + "/{topic_id:int}/unhide")
async def unhide(request: Request, topic_id: int,
                 operator: Operator = Depends(csrf_checked)) -> Response:
    """Show the topic again."""
    return await _change(request, operator, "shown", lambda s, f: unhide_topic(s, topic_id))
