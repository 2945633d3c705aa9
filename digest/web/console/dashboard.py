"""The console's dashboard (``GET /admin``): the state of the service at a glance."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from digest.web.console.render import page
from digest.web.console.session import HOME, Operator, signed_in
from digest.web.deps import get_app

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.get(HOME, response_class=HTMLResponse)
def dashboard(request: Request, operator: Operator = Depends(signed_in)) -> HTMLResponse:
    """What goes out next, the readers, the editions, the feeds, and what to fix."""
    settings = get_app(request).settings
    return page(request, "dashboard.html", operator=operator, active="dashboard",
                warnings=settings.production_warnings())
