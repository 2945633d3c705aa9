"""Readers' pages: sign up, confirm, unsubscribe (RFC 8058 one-click).

Each route parses the request, calls one service function (``readers.signup``,
``readers.optin``, ``readers.preferences``) and renders the answer with ``web.pages``. A GET
never changes anything, so a link scanner opening a mail's links cannot confirm or
unsubscribe anyone. The sign-up answer is the same for every valid address; only a
malformed request or address gets an error. Preferences are in ``web.preferences``.
"""

from __future__ import annotations

import json
import math
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.background import BackgroundTasks
from starlette.concurrency import run_in_threadpool

from digest.config import Settings
from digest.errors import InvalidEmailError, InvalidTokenError, RateLimitedError, SubscriberError
from digest.readers import mails as reader_mail
from digest.readers import optin
from digest.readers import preferences as reader_prefs
from digest.readers.choices import signup_slot
from digest.readers.signup import (
    SignupRequest,
    StaleFormError,
    SubmittedTooFastError,
    check_form,
    form_stamp,
    second_press_stamp,
    sign_up,
)
from digest.store.models import SubscriberStatus
from digest.web.deps import client_ip, get_app
from digest.web.pages import bad_link_page, message_page, render_page, sentence
from digest.web.reader_choices import choice_context

router = APIRouter(tags=["readers"])


CHECK_INBOX = ("If the address can receive our mail, a message is on its way. "
               "Open it and press the button to confirm.")


def _expired_confirm(request: Request, exc: SubscriberError) -> HTMLResponse:
    """A confirm link that no longer works: say so, and offer a new one at once."""
    return message_page(request, "This confirmation link does not work",
                    sentence(str(exc)),
                    "Enter your address and we will send you a new link.",
                    status=400, links=("blog", "archive"), new_link_form=True,
                    stamp=form_stamp(get_app(request).settings))


def _minutes(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


def _address_error(exc: InvalidEmailError) -> str:
    """The validator's own explanation when there is one, as a sentence."""
    return sentence(str(exc.__cause__ or exc))


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
        fields = {k: v for k, v in data.items() if isinstance(v, str)}
        hour = data.get("hour")
        if isinstance(hour, int) and not isinstance(hour, bool):  # {"hour": 7} as well as "7"
            fields["hour"] = str(hour)
        return True, fields
    form = await request.form()
    return False, {k: v for k, v in form.items() if isinstance(v, str)}


def _when(settings: Settings, fields: dict[str, str] | None = None) -> dict[str, Any]:
    """The zone and hour selects, showing what the form sent (when it can be taken)."""
    slot = signup_slot(settings, *((fields.get("timezone"), fields.get("hour")) if fields
                                   else (None, None)))
    hour = "" if slot.hour is None else str(slot.hour)
    return {**choice_context(settings, slot.timezone), "hour": hour, "guess_zone": not fields}


@router.get("/", response_class=HTMLResponse, summary="The signup page (no JavaScript needed)")
def signup_page(request: Request) -> HTMLResponse:
    """The signup form, with a honeypot, a signed time stamp, and the reader's time zone
    (the operator's, or the browser's where its script runs) and hour."""
    settings = get_app(request).settings
    return render_page(request, "signup.html", action="/subscribe", stamp=form_stamp(settings),
                       **_when(settings))


def _check_inbox(request: Request, address: str) -> HTMLResponse:
    """The same page for every valid address, new or known: it only repeats what was typed."""
    settings = get_app(request).settings
    resend = int(optin.RESEND_AFTER.total_seconds())
    return message_page(
        request, "Check your inbox",
        f"If {address.strip()} can receive our mail, a message from {settings.from_email} "
        "is on its way. Open it and press the button to confirm.",
        "Nothing after a few minutes? Look in your spam or junk folder, and add "
        f"{settings.from_email} to your contacts.",
        f"Asking again within {_minutes(resend)} sends no second email: the first one is "
        "still good.",
        links=("blog", "archive", "signup"))


@router.post("/subscribe", summary="Sign up (form or JSON); the same answer for every address")
async def subscribe(request: Request) -> Response:
    """Start a double opt-in; answers alike for new, pending, active and unsubscribed."""
    try:
        is_json, fields = await _signup_fields(request)
    except ValueError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=400)
    settings = get_app(request).settings
    client = client_ip(request, settings)
    form = SignupRequest(email=fields.get("email", ""), ip=client,
                         source=fields.get("source", "web"),
                         honeypot=fields.get("website", ""), stamp=fields.get("stamp"),
                         timezone=fields.get("timezone"), hour=fields.get("hour"))
    status, detail, headers, stale = 200, CHECK_INBOX, {}, False
    after = BackgroundTasks()  # recording it and the confirmation mail follow the answer
    try:
        check_form(settings, form)
        # Off the event loop: it talks to Redis (limits, or the Celery broker).
        await run_in_threadpool(sign_up, get_app(request), request.app.state.limiter, form,
                                dispatch=partial(request.app.state.jobs.sign_up, after=after))
    except InvalidEmailError as exc:
        status, detail = 422, _address_error(exc)
    except SubmittedTooFastError as exc:
        status, detail, stale = 409, sentence(str(exc)), isinstance(exc, StaleFormError)
    except RateLimitedError as exc:
        status = 429
        detail = (f"Too many sign-up requests from here. Please try again in "
                  f"{_minutes(exc.retry_after)}.")
        headers = {"Retry-After": str(exc.retry_after)}
    if is_json:
        body = {"status": "ok", "message": detail} if status == 200 else {"detail": detail}
        return JSONResponse(body, status_code=status, headers=headers, background=after)
    if status == 200:
        page = _check_inbox(request, form.email)
        page.background = after
        return page
    if status == 409:  # autofill, or a form left open: one more press, accepted at once
        return render_page(request, "signup.html", 200, action="/subscribe", press_again=True,
                     press_again_stale=stale,
                     email=form.email, source=fields.get("source"),
                     stamp=second_press_stamp(settings), **_when(settings, fields))
    if status == 422:
        return render_page(request, "signup.html", 422, action="/subscribe", error=detail,
                     error_title="Check the address", email=form.email,
                     source=fields.get("source"), stamp=form_stamp(settings),
                     **_when(settings, fields))
    return message_page(request, "Please wait a little", detail, status=status, headers=headers,
                    links=("blog", "archive"))


@router.get("/confirm/{token}", response_class=HTMLResponse, summary="Confirmation page")
def confirm_page(request: Request, token: str) -> HTMLResponse:
    """A page with one button, once the link is checked; opening it changes nothing."""
    try:
        state = optin.confirm_status(get_app(request), token)
    except InvalidTokenError as exc:
        return _expired_confirm(request, exc)
    if state is SubscriberStatus.ACTIVE:
        return message_page(request, "You are already subscribed",
                        "This address is confirmed; nothing more to do.")
    return render_page(request, "confirm.html")


@router.post("/confirm/{token}", response_class=HTMLResponse, summary="Confirm a sign-up")
def confirm(request: Request, token: str) -> HTMLResponse:
    """Make the sign-up active and send the welcome mail."""
    app = get_app(request)
    after = BackgroundTasks()  # the welcome mail follows the answer
    try:
        confirmed_now = optin.confirm(
            app, token, welcome=partial(request.app.state.jobs.welcome, after=after))
    except InvalidTokenError as exc:
        return _expired_confirm(request, exc)
    first = f"Your first digest comes {reader_mail.first_digest(app.settings)}."
    if not confirmed_now:  # pressed twice, or an old link: no second welcome mail is sent
        return message_page(request, "You are subscribed",
                        "Your subscription was already confirmed; nothing more to do.")
    page = message_page(request, "You are subscribed",
                    "Thank you. A welcome email is on its way.", first)
    page.background = after
    return page


@router.get("/unsubscribe/{token}", response_class=HTMLResponse, summary="Unsubscribe page")
def unsubscribe_page(request: Request, token: str) -> HTMLResponse:
    """A page with one button, once the link is checked; opening it changes nothing."""
    try:
        reader_prefs.check_unsubscribe_link(get_app(request), token)
    except InvalidTokenError as exc:
        return bad_link_page(request, exc)
    return render_page(request, "unsubscribe.html")


@router.post("/unsubscribe/{token}", response_class=HTMLResponse,
             summary="Unsubscribe, including RFC 8058 one-click (List-Unsubscribe=One-Click)")
def unsubscribe(request: Request, token: str) -> HTMLResponse:
    """Unsubscribe at once: no cookies, no login, 200 and no redirect."""
    try:
        reader_prefs.unsubscribe(get_app(request), token)
    except InvalidTokenError as exc:
        return bad_link_page(request, exc)
    return message_page(request, "You are unsubscribed",
                    "You will not get any more emails from us.",
                    "Changed your mind? You can sign up again at any time.",
                    links=("blog", "signup-again", "archive"))
