"""`digest alerts`: the operator alerts open now (``--check``: look for new ones first)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from digest.cli.common import errors_to_exit, open_app, out
from digest.wording import plural


@errors_to_exit
def alerts(
    check: Annotated[bool, typer.Option(
        "--check", help="Check for alerts now (as beat and the web app do every five "
                        "minutes), mailing DIGEST_OPERATOR_EMAIL about each new one.")] = False,
) -> None:
    """List the open operator alerts: what is wrong, since when, and whether the operator was
    told; docs/operating.md has what to do for each."""
    from datetime import UTC, datetime

    from digest.delivery.alerts import check_alerts, open_alerts

    app = open_app()
    if check:
        told = check_alerts(app, now=datetime.now(UTC))
        target = app.settings.operator_email or "the log (DIGEST_OPERATOR_EMAIL is not set)"
        for subject in told:
            out.print(f"new alert, sent to {target}: {subject}", highlight=False, markup=False)
    found = open_alerts(app)
    table = Table("alert", "since", "told", "what")
    for alert in found:
        told_at = (f"{alert.notified_at:%Y-%m-%d %H:%M}" if alert.notified_at
                   else "not yet (waiting to see if it lasts)")
        table.add_row(Text(alert.key), f"{alert.opened_at:%Y-%m-%d %H:%M}", told_at,
                      Text(alert.detail))
    if found:
        out.print(table)
    out.print(f"{plural(len(found), 'open alert')} (times in UTC)")
