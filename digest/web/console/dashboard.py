"""The console's dashboard (``GET /admin``): the state of the service at a glance.

The figures come from ``delivery.dashboard`` (one service call); this module only turns them
into the page: times in the operator's time zone, and the two charts as SVG.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from digest.delivery.dashboard import Dashboard, dashboard
from digest.store.models import Cadence, SubscriberStatus
from digest.web.console.charts import Series, bar_chart, line_chart
from digest.web.console.render import page
from digest.web.console.session import HOME, Operator, now_utc, signed_in
from digest.web.console.snapshot import Snapshot
from digest.web.deps import get_app

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

WEEK_SERIES = (("Sign-ups", "signups"), ("Confirmations", "confirmations"),
               ("Unsubscribes", "unsubscribes"), ("Bounces", "bounces"),
               ("Complaints", "complaints"))
EDITION_SERIES = (("Delivered", "delivered"), ("Bounced", "bounced"),
                  ("Complained", "complained"), ("Failed", "failed"))


def _charts(data: Dashboard) -> tuple[Markup, Markup]:
    week_labels = [f"{w.start:%d %b}" for w in data.weeks]
    weeks = line_chart(
        f"Readers per week, the last {len(data.weeks)} weeks", "chart-readers", week_labels,
        [Series(name, [getattr(w, field) for w in data.weeks]) for name, field in WEEK_SERIES])
    shown = list(reversed(data.editions))  # oldest first, left to right
    editions = bar_chart(
        f"The last {len(shown)} editions", "chart-editions", [f"#{e.id}" for e in shown],
        [Series(name, [getattr(e, field) for e in shown]) for name, field in EDITION_SERIES])
    return weeks, editions


def _snapshot(request: Request) -> Snapshot[Dashboard]:
    """This web app's kept dashboard (one per process and app)."""
    kept: Snapshot[Dashboard] | None = getattr(request.app.state, "console_dashboard", None)
    if kept is None:
        app = get_app(request)
        kept = Snapshot(lambda: dashboard(app, now_utc()))
        request.app.state.console_dashboard = kept
    return kept


@router.get(HOME, response_class=HTMLResponse)
async def dashboard_page(request: Request, refresh: bool = False,
                         operator: Operator = Depends(signed_in)) -> HTMLResponse:
    """What goes out next, the readers, the editions, the feeds, and what to fix."""
    app = get_app(request)
    data = await run_in_threadpool(_snapshot(request).get, refresh=refresh)
    tz = app.settings.tz
    readers_chart, editions_chart = _charts(data)

    def at(moment: datetime | None, fmt: str = "%a %d %b %Y, %H:%M") -> str:
        return moment.astimezone(tz).strftime(fmt) if moment is not None else "never"

    return page(request, "dashboard.html", operator=operator, active="dashboard", d=data,
                at=at, statuses=[s.value for s in SubscriberStatus],
                cadences=[c.value for c in Cadence], week_series=WEEK_SERIES,
                edition_series=EDITION_SERIES, readers_chart=readers_chart,
                editions_chart=editions_chart)
