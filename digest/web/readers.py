"""Readers' pages: sign up, confirm, unsubscribe (RFC 8058 one-click) and preferences.

Each route parses the request, calls one service function (``digest.signup``,
``digest.subscribers``) and renders the answer. A GET never changes anything, so a link
scanner opening a mail's links cannot confirm or unsubscribe anyone. The signup answer is the
same for every valid address; only a malformed request or address gets an error.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.background import BackgroundTasks
from starlette.concurrency import run_in_threadpool

from digest import subscribers
from digest.config import TEMPLATES_DIR
from digest.errors import InvalidEmailError, InvalidTokenError, RateLimitedError, SubscriberError
from digest.models import Cadence
from digest.signup import SignupRequest, form_stamp, sign_up
from digest.web.deps import client_ip, get_app

__all__ = ["router", "templates"]

router = APIRouter(tags=["readers"])
templates = Jinja2Templates(directory=TEMPLATES_DIR / "web")

CHECK_INBOX = ("If the address can receive our mail, a message is on its way. "
               "Open it and press the button to confirm.")
CADENCES = [(Cadence.WEEKLY.value, "Once a week (the weekly digest)"),
            (Cadence.DAILY.value, "Once a day, when there are new posts"),
            (Cadence.INSTANT.value, "Every new post, as it appears")]


def _page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    settings = get_app(request).settings
    context = {"blog_name": settings.blog_name, "postal_address": settings.postal_address,
               "action": request.url.path, **context}
    return templates.TemplateResponse(request, name, context, status_code=status)


def _message(request: Request, title: str, message: str, status: int = 200,
             headers: dict[str, str] | None = None) -> HTMLResponse:
    response = _page(request, "message.html", status, title=title, message=message,
                     is_error=status >= 400)
    response.headers.update(headers or {})
    return response


def _bad_link(request: Request, exc: SubscriberError) -> HTMLResponse:
    return _message(request, "This link does not work", f"{exc}.", 400)


async def _signup_fields(request: Request) -> tuple[bool, dict[str, str]]:
    """(is_json, fields) from a JSON object or a form; ValueError says what is wrong."""
    if request.headers.get("content-type", "").split(";")[0].strip() == "application/json":
        try:
            data = json.loads(await request.body())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"the body is not valid JSON: {exc}") from exc
        except RecursionError as exc:
            raise ValueError("the body is nested too deeply; send a flat JSON object") from exc
        if not isinstance(data, dict) or not isinstance(data.get("email"), str):
            raise ValueError('send a JSON object like {"email": "you@example.com"}')
        return True, {k: v for k, v in data.items() if isinstance(v, str)}
    form = await request.form()
    return False, {k: v for k, v in form.items() if isinstance(v, str)}


@router.get("/", response_class=HTMLResponse, summary="The signup page (no JavaScript needed)")
def signup_page(request: Request) -> HTMLResponse:
    """The signup form, with a honeypot and a signed time stamp."""
    settings = get_app(request).settings
    return _page(request, "signup.html", action="/subscribe", stamp=form_stamp(settings))


@router.post("/subscribe", summary="Sign up (form or JSON); the same answer for every address")
async def subscribe(request: Request) -> Response:
    """Start a double opt-in; answers alike for new, pending, active and unsubscribed."""
    try:
        is_json, fields = await _signup_fields(request)
    except ValueError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=400)
    client = client_ip(request, get_app(request).settings)
    form = SignupRequest(email=fields.get("email", ""), ip=client,
                         source=fields.get("source", "web"),
                         honeypot=fields.get("website", ""), stamp=fields.get("stamp"))
    status, detail, headers = 200, CHECK_INBOX, {}
    after = BackgroundTasks()  # recording it and the confirmation mail follow the answer
    try:
        # Off the event loop: it talks to Redis (limits, or the Celery broker).
        await run_in_threadpool(sign_up, get_app(request), request.app.state.limiter, form,
                                dispatch=partial(request.app.state.jobs.sign_up, after=after))
    except InvalidEmailError as exc:
        status, detail = 422, str(exc)
    except RateLimitedError as exc:
        status, detail = 429, str(exc)
        headers = {"Retry-After": str(exc.retry_after)}
    if is_json:
        body = {"status": "ok", "message": detail} if status == 200 else {"detail": detail}
        return JSONResponse(body, status_code=status, headers=headers, background=after)
    if status == 422:
        return _page(request, "signup.html", 422, action="/subscribe", error=detail,
                     email=form.email, stamp=form_stamp(get_app(request).settings))
    title = "Check your inbox" if status == 200 else "Please wait a moment"
    page = _message(request, title, detail, status, headers)
    page.background = after
    return page


@router.get("/confirm/{token}", response_class=HTMLResponse, summary="Confirmation page")
def confirm_page(request: Request, token: str) -> HTMLResponse:
    """A page with one button; opening it changes nothing."""
    return _page(request, "confirm.html")


@router.post("/confirm/{token}", response_class=HTMLResponse, summary="Confirm a sign-up")
def confirm(request: Request, token: str) -> HTMLResponse:
    """Make the sign-up active and send the welcome mail."""
    after = BackgroundTasks()  # the welcome mail follows the answer
    try:
        confirmed_now = subscribers.confirm(
            get_app(request), token,
            welcome=partial(request.app.state.jobs.welcome, after=after))
    except InvalidTokenError as exc:
        return _bad_link(request, exc)
    if not confirmed_now:  # pressed twice, or an old link: no second welcome mail is sent
        return _message(request, "You are subscribed",
                        "Your subscription was already confirmed; nothing more to do.")
    page = _message(request, "You are subscribed",
                    "Thank you. A welcome email is on its way.")
    page.background = after
    return page


@router.get("/unsubscribe/{token}", response_class=HTMLResponse, summary="Unsubscribe page")
def unsubscribe_page(request: Request, token: str) -> HTMLResponse:
    """A page with one button; opening it changes nothing."""
    return _page(request, "unsubscribe.html")


@router.post("/unsubscribe/{token}", response_class=HTMLResponse,
             summary="Unsubscribe, including RFC 8058 one-click (List-Unsubscribe=One-Click)")
def unsubscribe(request: Request, token: str) -> HTMLResponse:
    """Unsubscribe at once: no cookies, no login, 200 and no redirect."""
    try:
        subscribers.unsubscribe(get_app(request), token)
    except InvalidTokenError as exc:
        return _bad_link(request, exc)
    return _message(request, "You are unsubscribed",
                    "You will not get any more emails from us. Changed your mind? "
                    "Sign up again on the blog.")


def _preferences_page(request: Request, token: str, status: int = 200,
                      **context: Any) -> HTMLResponse:
    try:
        prefs = subscribers.get_preferences(get_app(request), token)
    except InvalidTokenError as exc:
        return _bad_link(request, exc)
    return _page(request, "preferences.html", status, prefs=prefs, cadences=CADENCES,
                 **context)


@router.get("/preferences/{token}", response_class=HTMLResponse, summary="Preferences page")
def preferences_page(request: Request, token: str) -> HTMLResponse:
    """Frequency, pause, download my data, delete me."""
    return _preferences_page(request, token)


@router.post("/preferences/{token}", summary="Save preferences, download or delete my data")
async def preferences(request: Request, token: str) -> Response:
    """One form action: save, download or delete."""
    app = get_app(request)
    form = await request.form()
    action = str(form.get("action", "save"))
    try:
        if action == "download":
            data = await run_in_threadpool(subscribers.export_my_data, app, token)
            return JSONResponse(data, headers={
                "Content-Disposition": 'attachment; filename="my-subscription-data.json"'})
        if action == "delete":
            if form.get("sure") is None:  # the page's checkbox; never delete without it
                return await run_in_threadpool(
                    _preferences_page, request, token, 422,
                    error="Tick “Yes, delete everything about me” to delete your data.")
            await run_in_threadpool(subscribers.delete_me, app, token)
            return _message(request, "Your data is deleted",
                            "We erased your address and everything about you.")
        await run_in_threadpool(subscribers.update_preferences, app, token,
                                str(form.get("cadence", Cadence.WEEKLY)),
                                paused=form.get("paused") is not None)
    except InvalidTokenError as exc:
        return _bad_link(request, exc)
    except SubscriberError as exc:
        return await run_in_threadpool(_preferences_page, request, token, 422,
                                       error=str(exc))
    return await run_in_threadpool(_preferences_page, request, token, notice="Saved.")
