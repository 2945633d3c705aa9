"""The reader's preferences page: their real state, frequency, pause, time zone, hour, day,
topics, resubscribe, download, delete.

Each route parses the form, calls one service in ``digest.readers.preferences`` and renders.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from digest.errors import InvalidTokenError, SubscriberError
from digest.readers import preferences as reader_prefs
from digest.readers.choices import Choices
from digest.readers.preferences import Preferences
from digest.store.models import Cadence, SubscriberStatus
from digest.web.deps import client_ip, get_app
from digest.web.pages import bad_link_page, message_page, render_page, sentence
from digest.web.reader_choices import choice_context

router = APIRouter(tags=["readers"])


STATES = {SubscriberStatus.ACTIVE: "subscribed", SubscriberStatus.PENDING: "waiting for you "
          "to confirm", SubscriberStatus.UNSUBSCRIBED: "unsubscribed",
          SubscriberStatus.BOUNCED: "stopped (your mail server refused our emails)",
          SubscriberStatus.COMPLAINED: "stopped (our email was reported as spam)"}


CADENCES = [(Cadence.WEEKLY.value, "Once a week (the weekly digest)"),
            (Cadence.DAILY.value, "Once a day, when there are new posts"),
            (Cadence.INSTANT.value, "Every new post, as it appears")]


def _state_text(prefs: Preferences) -> str:
    if prefs.status is SubscriberStatus.ACTIVE and prefs.paused:
        return "paused (no emails until you resume)"
    return STATES.get(prefs.status, prefs.status.value)


def _preferences_page(request: Request, token: str, status: int = 200,
                      **context: Any) -> HTMLResponse:
    app = get_app(request)
    try:
        prefs = reader_prefs.get_preferences(app, token)
        topics = reader_prefs.topics_offered(app)
    except InvalidTokenError as exc:
        return bad_link_page(request, exc)
    return render_page(request, "preferences.html", status, prefs=prefs, cadences=CADENCES,
                 state_text=_state_text(prefs), topics=topics,
                 **choice_context(app.settings, prefs.timezone),
                 hour="" if prefs.hour is None else str(prefs.hour),
                 weekday="" if prefs.weekday is None else str(prefs.weekday),
                 guess_zone=prefs.timezone is None and not prefs.chose_time, **context)


def _saved(before: Preferences, after: Preferences) -> str:
    """What a save changed, in words."""
    changes = []
    if before.cadence != after.cadence:
        label = dict(CADENCES)[after.cadence.value]
        changes.append(f"you will now get email {label[0].lower()}{label[1:]}")
    if before.paused != after.paused:
        changes.append("emails are paused" if after.paused else "emails are back on")
    if (before.timezone, before.hour, before.weekday) != (after.timezone, after.hour,
                                                          after.weekday):
        changes.append(f"your digest now comes {after.when}")
    if before.topic_ids != after.topic_ids:
        changes.append("you now get every topic" if after.topic_ids is None
                       else "your topics are changed")
    if not changes:
        return "Saved. Nothing changed."
    return sentence("Saved: " + " and ".join(changes))


def _paused_field(values: list[Any]) -> bool | None:
    """The pause checkbox: None when the form did not carry it (keep), else ticked or not."""
    given = [str(v) for v in values]
    return None if not given else "1" in given


def _field(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


def _choices(form: FormData) -> Choices:
    """Time zone, hour, weekday and topics as sent; a field the form lacks is kept. The
    topics are read only with the form's ``topics_shown`` marker (no box ticked: every
    topic)."""
    topics = None
    if form.get("topics_shown") is not None:
        topics = [v for v in form.getlist("topic") if isinstance(v, str)]
    return Choices(_field(form, "timezone"), _field(form, "hour"), _field(form, "weekday"),
                   topics)


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
            data = await run_in_threadpool(reader_prefs.export_my_data, app, token)
            return JSONResponse(data, headers={
                "Content-Disposition": 'attachment; filename="my-subscription-data.json"'})
        if action == "delete":
            if form.get("sure") is None:  # the page's checkbox; never delete without it
                return await run_in_threadpool(
                    _preferences_page, request, token, 422,
                    error="Tick “Yes, delete everything about me” to delete your data.")
            await run_in_threadpool(reader_prefs.delete_me, app, token)
            return message_page(request, "Your data is deleted",
                            "We erased your address and everything about you.",
                            links=("blog", "signup-again"))
        if action == "resubscribe":
            client = client_ip(request, app.settings)
            await run_in_threadpool(reader_prefs.resubscribe, app, token, client)
            return await run_in_threadpool(
                _preferences_page, request, token,
                notice="Welcome back: you are subscribed again.")
        cadence = form.get("cadence")
        before, after = await run_in_threadpool(
            reader_prefs.save_preferences, app, token,
            str(cadence) if cadence is not None else None,
            _paused_field(form.getlist("paused")), _choices(form))
    except InvalidTokenError as exc:
        return bad_link_page(request, exc)
    except SubscriberError as exc:
        return await run_in_threadpool(_preferences_page, request, token, 422,
                                       error=sentence(str(exc)))
    return await run_in_threadpool(_preferences_page, request, token,
                                   notice=_saved(before, after))
