"""Dependencies shared by every router: the wired App and the admin bearer check."""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request, status

from digest.wiring import App


def get_app(request: Request) -> App:
    """The App built once at start-up (``create_app`` stores it on ``app.state.digest``)."""
    app: App = request.app.state.digest
    return app


def require_admin(request: Request) -> None:
    """Admin routes need ``Authorization: Bearer <DIGEST_ADMIN_TOKEN>``, else 401."""
    token = get_app(request).settings.admin_token
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if (
        token is None
        or not token.get_secret_value()
        or scheme.lower() != "bearer"
        or not hmac.compare_digest(given.strip().encode(), token.get_secret_value().encode())
    ):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="admin token required",
            headers={"WWW-Authenticate": "Bearer"},
        )
