"""Request body size limits, enforced before any route reads the body.

A declared ``Content-Length`` over the limit is refused at once with 413; a chunked body is
counted as it arrives and refused as soon as it passes the limit, so a huge upload never sits
in memory. Public forms need a few kilobytes; the admin CSV import gets a larger allowance.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodySizeLimit", "BodyTooLarge"]

DEFAULT_LIMIT = 64 * 1024


class BodyTooLarge(HTTPException):
    """The request body passed the limit for its path (answered 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body too large (limit {limit} bytes)")


class BodySizeLimit:
    """ASGI middleware: at most ``default`` bytes of body, or more under given path prefixes."""

    def __init__(self, app: ASGIApp, default: int = DEFAULT_LIMIT,
                 prefixes: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.default = default
        self.prefixes = dict(prefixes or {})

    def limit_for(self, path: str) -> int:
        """The byte limit for a request path (the longest matching prefix wins)."""
        best, limit = -1, self.default
        for prefix, value in self.prefixes.items():
            if path.startswith(prefix) and len(prefix) > best:
                best, limit = len(prefix), value
        return limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                too_big = False
            if too_big:
                await self._refuse(scope, receive, send, limit)
                return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send, limit)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = JSONResponse(
            {"detail": f"request body too large (limit {limit} bytes)"},
            status_code=413,
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)
