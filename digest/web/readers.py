"""Readers' pages: sign up, confirm, unsubscribe (RFC 8058 one-click) and preferences.

Each route parses the request, calls one service function (``digest.signup``,
``digest.subscribers``) and renders the answer. A GET never changes anything, so a link
scanner opening a mail's links cannot confirm or unsubscribe anyone. The signup answer is the
same for every valid address; only a malformed request or address gets an error.
"""

from __future__ import annotations

import json
import math
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.background import BackgroundTasks
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from digest import reader_mail, subscribers
from digest.config import TEMPLATES_DIR
from digest.errors import InvalidEmailError, InvalidTokenError, RateLimitedError, SubscriberError
from digest.models import Cadence, SubscriberStatus
from digest.signup import (
    SignupRequest,
    SubmittedTooFastError,
    check_form,
    form_stamp,
    second_press_stamp,
    sign_up,
)
from digest.subscribers import Preferences
from digest.web.deps import client_ip, get_app

__all__ = ["error_page", "router", "sentence", "templates"]

router = APIRouter(tags=["readers"])
templates = Jinja2Templates(directory=TEMPLATES_DIR / "web")

CHECK_INBOX = ("If the address can receive our mail, a message is on its way. "
               "Open it and press the button to confirm.")
STATES = {SubscriberStatus.ACTIVE: "subscribed", SubscriberStatus.PENDING: "waiting for you "
          "to confirm", SubscriberStatus.UNSUBSCRIBED: "unsubscribed",
          SubscriberStatus.BOUNCED: "stopped (your mail server refused our emails)",
          SubscriberStatus.COMPLAINED: "stopped (our email was reported as spam)"}
CADENCES = [(Cadence.WEEKLY.value, "Once a week (the weekly digest)"),
            (Cadence.DAILY.value, "Once a day, when there are new posts"),
            (Cadence.INSTANT.value, "Every new post, as it appears")]


def sentence(text: str) -> str:
    """Reader-facing copy from an error message: capitalised, ending in a full stop."""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def _page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    app = get_app(request)
    settings = app.settings
    blog = reader_mail.blog_url(app)
    context = {"blog_name": settings.blog_name, "postal_address": settings.postal_address,
               "blog_url": blog, "action": request.url.path,
               "cadence": reader_mail.how_often(settings), **context}
    return templates.TemplateResponse(request, name, context, status_code=status)


def _next_links(request: Request, *kinds: str) -> list[tuple[str, str]]:
    """Onward links for a result page: the blog, the archive, the sign-up page."""
    app = get_app(request)
    found = []
    for kind in kinds:
        if kind == "blog" and (blog := reader_mail.blog_url(app)):
            found.append((blog, f"Back to {app.settings.blog_name}"))
        elif kind == "archive":
            found.append(("/archive", "Read past digests"))
        elif kind == "signup":
            found.append(("/", "Sign up with another address"))
        elif kind == "signup-again":
            found.append(("/", "Sign up again"))
    return found


def _message(request: Request, title: str, *paragraphs: str, status: int = 200,
             headers: dict[str, str] | None = None, links: tuple[str, ...] = ("blog", "archive"),
             **context: Any) -> HTMLResponse:
    is_error = status >= 400
    response = _page(request, "message.html", status, title=title, paragraphs=paragraphs,
                     is_error=is_error, error=is_error, next_links=_next_links(request, *links),
                     **context)
    response.headers.update(headers or {})
    return response


def error_page(request: Request, status: int, title: str, *paragraphs: str) -> HTMLResponse:
    """A reader-facing error as one of the site's pages (for browsers, not API clients)."""
    return _message(request, title, *paragraphs, status=status,
                    links=("blog", "archive", "signup-again"))


def _bad_link(request: Request, exc: SubscriberError) -> HTMLResponse:
    return _message(request, "This link does not work", sentence(str(exc)), status=400,
                    links=("blog", "archive", "signup-again"))


def _expired_confirm(request: Request, exc: SubscriberError) -> HTMLResponse:
    """A confirm link that no longer works: say so, and offer a new one at once."""
    return _message(request, "This confirmation link does not work",
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
        return True, {k: v for k, v in data.items() if isinstance(v, str)}
    form = await request.form()
    return False, {k: v for k, v in form.items() if isinstance(v, str)}


@router.get("/", response_class=HTMLResponse, summary="The signup page (no JavaScript needed)")
def signup_page(request: Request) -> HTMLResponse:
    """The signup form, with a honeypot and a signed time stamp."""
    settings = get_app(request).settings
    return _page(request, "signup.html", action="/subscribe", stamp=form_stamp(settings))


def _check_inbox(request: Request, address: str) -> HTMLResponse:
    """The same page for every valid address, new or known: it only repeats what was typed."""
    settings = get_app(request).settings
    resend = int(subscribers.RESEND_AFTER.total_seconds())
    return _message(
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
                         honeypot=fields.get("website", ""), stamp=fields.get("stamp"))
    status, detail, headers = 200, CHECK_INBOX, {}
    after = BackgroundTasks()  # recording it and the confirmation mail follow the answer
    try:
        check_form(settings, form)
        # Off the event loop: it talks to Redis (limits, or the Celery broker).
        await run_in_threadpool(sign_up, get_app(request), request.app.state.limiter, form,
                                dispatch=partial(request.app.state.jobs.sign_up, after=after))
    except InvalidEmailError as exc:
        status, detail = 422, _address_error(exc)
    except SubmittedTooFastError as exc:
        status, detail = 409, sentence(str(exc))
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
    if status == 409:  # a person with autofill, most likely: one more press, accepted at once
        return _page(request, "signup.html", 200, action="/subscribe", press_again=True,
                     email=form.email, source=fields.get("source"),
                     stamp=second_press_stamp(settings))
    if status == 422:
        return _page(request, "signup.html", 422, action="/subscribe", error=detail,
                     error_title="Check the address", email=form.email,
                     source=fields.get("source"), stamp=form_stamp(settings))
    return _message(request, "Please wait a little", detail, status=status, headers=headers,
                    links=("blog", "archive"))


@router.get("/confirm/{token}", response_class=HTMLResponse, summary="Confirmation page")
def confirm_page(request: Request, token: str) -> HTMLResponse:
    """A page with one button, once the link is checked; opening it changes nothing."""
    try:
        state = subscribers.confirm_status(get_app(request), token)
    except InvalidTokenError as exc:
        return _expired_confirm(request, exc)
    if state is SubscriberStatus.ACTIVE:
        return _message(request, "You are already subscribed",
                        "This address is confirmed; nothing more to do.")
    return _page(request, "confirm.html")


@router.post("/confirm/{token}", response_class=HTMLResponse, summary="Confirm a sign-up")
def confirm(request: Request, token: str) -> HTMLResponse:
    """Make the sign-up active and send the welcome mail."""
    app = get_app(request)
    after = BackgroundTasks()  # the welcome mail follows the answer
    try:
        confirmed_now = subscribers.confirm(
            app, token, welcome=partial(request.app.state.jobs.welcome, after=after))
    except InvalidTokenError as exc:
        return _expired_confirm(request, exc)
    first = f"Your first digest comes {reader_mail.first_digest(app.settings)}."
    if not confirmed_now:  # pressed twice, or an old link: no second welcome mail is sent
        return _message(request, "You are subscribed",
                        "Your subscription was already confirmed; nothing more to do.")
    page = _message(request, "You are subscribed",
                    "Thank you. A welcome email is on its way.", first)
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
                    "You will not get any more emails from us.",
                    "Changed your mind? You can sign up again at any time.",
                    links=("blog", "signup-again", "archive"))


def _state_text(prefs: Preferences) -> str:
    if prefs.status is SubscriberStatus.ACTIVE and prefs.paused:
        return "paused (no emails until you resume)"
    return STATES.get(prefs.status, prefs.status.value)


def _preferences_page(request: Request, token: str, status: int = 200,
                      **context: Any) -> HTMLResponse:
    try:
        prefs = subscribers.get_preferences(get_app(request), token)
    except InvalidTokenError as exc:
        return _bad_link(request, exc)
    return _page(request, "preferences.html", status, prefs=prefs, cadences=CADENCES,
                 state_text=_state_text(prefs), **context)


def _saved(before: Preferences, after: Preferences) -> str:
    """What a save changed, in words."""
    changes = []
    if before.cadence != after.cadence:
        label = dict(CADENCES)[after.cadence.value]
        changes.append(f"you will now get email {label[0].lower()}{label[1:]}")
    if before.paused != after.paused:
        changes.append("emails are paused" if after.paused else "emails are back on")
    if not changes:
        return "Saved. Nothing changed."
    return sentence("Saved: " + " and ".join(changes))


def _paused_field(values: list[Any]) -> bool | None:
    """The pause checkbox: None when the form did not carry it (keep), else ticked or not."""
    given = [str(v) for v in values]
    return None if not given else "1" in given


@router.get("/preferences/{token}", response_class=HTMLResponse, summary="Preferences page")
def preferences_page(request: Request, token: str) -> HTMLResponse:
    """Status, frequency, pause, resubscribe, download my data, delete me."""
    return _preferences_page(request, token)


@router.post("/preferences/{token}", summary="Save preferences, resubscribe, download or delete")
async def preferences(request: Request, token: str) -> Response:
    """One form action: save (only the fields sent), resubscribe, download or delete."""
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
                            "We erased your address and everything about you.",
                            links=("blog", "signup-again"))
        if action == "resubscribe":
            client = client_ip(request, app.settings)
            await run_in_threadpool(subscribers.resubscribe, app, token, client)
            return await run_in_threadpool(
                _preferences_page, request, token,
                notice="Welcome back: you are subscribed again.")
        cadence = form.get("cadence")
        before, after = await run_in_threadpool(
            subscribers.save_preferences, app, token,
            str(cadence) if cadence is not None else None,
            _paused_field(form.getlist("paused")))
    except InvalidTokenError as exc:
        return _bad_link(request, exc)
    except SubscriberError as exc:
        return await run_in_threadpool(_preferences_page, request, token, 422,
                                       error=sentence(str(exc)))
    return await run_in_threadpool(_preferences_page, request, token,
                                   notice=_saved(before, after))


_ERROR_TITLES = {404: "Page not found", 405: "This page cannot do that"}


async def http_error(request: Request, exc: Exception) -> Response:
    """Unknown pages and other HTTP errors: a site page for browsers, JSON for API clients."""
    if not isinstance(exc, HTTPException):
        raise exc
    accepts_html = "text/html" in request.headers.get("accept", "")
    if not accepts_html or exc.status_code not in _ERROR_TITLES:
        return await http_exception_handler(request, exc)
    return await run_in_threadpool(
        error_page, request, exc.status_code, _ERROR_TITLES[exc.status_code],
        "There is nothing at this address. The links below lead back to the blog.")
