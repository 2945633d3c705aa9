"""Dependencies shared by every router: the wired App and the admin bearer check."""

from __future__ import annotations

import hmac

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from digest.wiring import App

# Declared as a security scheme so /openapi.json tells clients how to authenticate.
_bearer = HTTPBearer(auto_error=False, description="DIGEST_ADMIN_TOKEN")


def get_app(request: Request) -> App:
    """The App built once at start-up (``create_app`` stores it on ``app.state.digest``)."""
    app: App = request.app.state.digest
    return app


def require_admin(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> None:
    """Admin routes need ``Authorization: Bearer <DIGEST_ADMIN_TOKEN>``, else 401.

    The comparison is constant-time; an unset or empty token disables the admin routes.
    """
    token = get_app(request).settings.admin_token
    given = credentials.credentials.strip() if credentials is not None else ""
    if (
        token is None
        or not token.get_secret_value()
        or not hmac.compare_digest(given.encode(), token.get_secret_value().encode())
    ):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="admin token required",
            headers={"WWW-Authenticate": "Bearer"},
        )
