"""Signing in to the console and out again.

The sign-in page says when no credential is configured (then nobody can sign in); a right
password or token sets the session cookie and goes on to ``next`` (a console path only); a
wrong one shows the form again, and too many tries from one address are refused for a while.
"""

from __future__ import annotations

import math

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from digest.errors import RateLimitedError
from digest.web.console.credentials import check_sign_in, sign_in_possible
from digest.web.console.render import page
from digest.web.console.session import (
    COOKIE,
    SIGN_IN_PATH,
    Operator,
    csrf_checked,
    end_session,
    local_next,
    now_utc,
    read_session,
    start_session,
)
from digest.web.deps import client_ip, get_app

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def _form(request: Request, *, next_path: str, status_code: int = 200, error: str | None = None,
          headers: dict[str, str] | None = None) -> HTMLResponse:
    settings = get_app(request).settings
    response = page(request, "sign_in.html", operator=None, active="sign-in",
                    status_code=status_code, error=error, next_path=next_path,
                    possible=sign_in_possible(settings))
    response.headers.update(headers or {})
    return response


@router.get(SIGN_IN_PATH, response_class=HTMLResponse)
def sign_in_page(request: Request,
                 next_path: str | None = Query(None, alias="next")) -> Response:
    """The password form (or straight on, when the session is still good)."""
    target = local_next(next_path)
    settings = get_app(request).settings
    if read_session(settings, request.cookies.get(COOKIE), now=now_utc()) is not None:
        return RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)
    return _form(request, next_path=target)


@router.post(SIGN_IN_PATH, response_class=HTMLResponse)
async def sign_in(request: Request) -> Response:
    """Check the password (or token); on success set the session and go to ``next``."""
    form = await request.form()
    password = form.get("password")
    target = local_next(str(form.get("next") or ""))
    settings = get_app(request).settings
    if not sign_in_possible(settings):
        return _form(request, next_path=target, status_code=status.HTTP_403_FORBIDDEN)
    try:
        ok = await run_in_threadpool(check_sign_in, settings, request.app.state.limiter,
                                     password if isinstance(password, str) else "",
                                     client_ip(request, settings))
    except RateLimitedError as exc:
        minutes = max(1, math.ceil(exc.retry_after / 60))
        return _form(request, next_path=target, status_code=status.HTTP_429_TOO_MANY_REQUESTS,
                     error=f"Too many sign-in attempts from here. Try again in {minutes} "
                           f"minute{'s' if minutes != 1 else ''}.",
                     headers={"Retry-After": str(exc.retry_after)})
    if not ok:
        return _form(request, next_path=target, status_code=status.HTTP_400_BAD_REQUEST,
                     error="That password is not right.")
    response = RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)
    start_session(response, settings, now=now_utc())
    return response


@router.post("/admin/sign-out")
def sign_out(request: Request, _: Operator = Depends(csrf_checked)) -> Response:
    """Drop the session cookie and go back to the sign-in page."""
    response = RedirectResponse(SIGN_IN_PATH, status_code=status.HTTP_303_SEE_OTHER)
    end_session(response, get_app(request).settings)
    return response
