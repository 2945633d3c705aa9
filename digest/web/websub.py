"""The WebSub callback: the hub verifies our intent (GET) and pushes new content (POST)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from digest.feeds import websub
from digest.runtime import App
from digest.store.models import MAX_ID
from digest.web.deps import get_app

router = APIRouter(tags=["websub"])

# A feed id as the database stores it: an id beyond 64 bits is a 422, not a database error.
FeedId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get("/websub/{feed_id}", response_class=Response,
            summary="WebSub verification of intent (echoes hub.challenge)")
def verify(
    feed_id: FeedId,
    app: Annotated[App, Depends(get_app)],
    mode: Annotated[str, Query(alias="hub.mode")] = "",
    topic: Annotated[str, Query(alias="hub.topic")] = "",
    challenge: Annotated[str, Query(alias="hub.challenge")] = "",
    lease_seconds: Annotated[str | None, Query(alias="hub.lease_seconds")] = None,
) -> Response:
    """Echo ``hub.challenge`` for a subscription we asked for; 404 otherwise."""
    answer = websub.verify_intent(
        app, feed_id, mode=mode, topic=topic, challenge=challenge, lease_seconds=lease_seconds
    )
    if answer is None:
        raise HTTPException(404, detail="no such subscription")
    return Response(answer, media_type="text/plain")


@router.post("/websub/{feed_id}", status_code=202, response_class=Response,
             summary="WebSub content push (signed with the subscription secret)")
async def distribute(feed_id: FeedId, request: Request) -> Response:
    """Accept pushed content; it is stored only when the hub's signature is valid.

    The body is read up to the feed size cap and refused (413) beyond it, never held whole.
    """
    app = get_app(request)
    cap = app.settings.fetch_max_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise HTTPException(413, detail=f"a push is limited to {cap} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise HTTPException(413, detail=f"a push is limited to {cap} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    await run_in_threadpool(websub.receive_content, app, feed_id, body, dict(request.headers))
    return Response(status_code=202)
