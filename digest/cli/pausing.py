"""`digest pause` and `digest resume`: stop claiming a running send's batches, and go on."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from digest.cli.common import err, errors_to_exit, open_app, out, progress_bar, warn_about_settings
from digest.store.models import MAX_ID
from digest.wording import plural

EditionArg = Annotated[int, typer.Argument(metavar="EDITION", min=1, max=MAX_ID,
                                          help="The edition's number (`digest stats`).")]


@errors_to_exit
def pause(edition: EditionArg) -> None:
    """Pause a running send: no new batch is claimed until `digest resume EDITION`.

    Batches already being sent finish; nobody is lost or mailed twice. Exits 1 if the
    edition is not being sent.
    """
    from digest.delivery.pause import OPERATOR_REASON, pause_edition
    from digest.delivery.progress import edition_progress

    app = open_app()
    now = datetime.now(UTC)
    if pause_edition(app, edition, reason=OPERATOR_REASON, now=now):
        out.print(f"edition {edition} paused: no new batch will be claimed, batches being "
                  f"sent finish; `digest resume {edition}` goes on", highlight=False)
    else:
        reason = edition_progress(app, edition, now).pause_reason
        out.print(f"edition {edition} was already paused ({reason}); "
                  f"`digest resume {edition}` goes on", highlight=False)


@errors_to_exit
def resume(
    edition: EditionArg,
    here: Annotated[bool, typer.Option("--here", help="Send the remaining batches in this "
                                       "process instead of handing them to the workers.")]
    = False,
) -> None:
    """Resume a paused send: its remaining batches go to the Celery workers (or, with
    --here, are sent by this command).

    Exits 1 if the edition is not being sent, or if the broker is down (the batches are
    recorded, and reconcile sends them once it is back).
    """
    from digest.delivery.ledger import edition_paused
    from digest.delivery.pause import resume_edition
    from digest.delivery.send import edition_result, paused_result, send_here
    from digest.errors import BrokerUnavailableError

    app = open_app()
    if not edition_paused(app, edition):
        resume_edition(app, edition, now=datetime.now(UTC))  # says why if it is not sending
        out.print(f"edition {edition} is not paused: nothing to resume", highlight=False)
        return
    if here:
        warn_about_settings(app)
        with progress_bar(disable=False) as progress:
            resume_edition(app, edition, now=datetime.now(UTC),
                           dispatch=send_here(app, edition, progress))
        paused = edition_paused(app, edition)
        result = paused_result(app, edition) if paused else edition_result(app, edition)
        out.print(result.describe(), highlight=False, markup=False)
        if result.failed:
            raise typer.Exit(1)
        return
    try:
        queued = resume_edition(app, edition, now=datetime.now(UTC))
    except BrokerUnavailableError as exc:
        err.print(f"[red]error:[/red] edition {edition} resumed, but the Celery broker did not "
                  f"take its batches ({exc}); they are recorded, and reconcile (run by beat) "
                  "sends them once the broker is back", highlight=False)
        raise typer.Exit(1) from exc
    if queued:
        out.print(f"edition {edition} resumed: {plural(queued, 'batch')} handed to the "
                  "workers; follow it with `digest stats`", highlight=False)
    else:
        out.print(f"edition {edition} resumed: no batch was left to send; it is "
                  f"{edition_result(app, edition).status}", highlight=False)
