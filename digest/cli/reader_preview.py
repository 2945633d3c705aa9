"""`digest preview --reader EMAIL`: what one reader gets next, and when on their own clock."""

from __future__ import annotations

from pathlib import Path

from digest.cli.common import open_app, out


def show_reader_next(address: str, out_file: Path | None) -> None:
    """Print when the reader's next digest comes (their clock and UTC), its subject and posts,
    and its text part (or write its HTML to ``out_file``)."""
    from digest.delivery.reader_next import next_for_reader

    found = next_for_reader(open_app(), address)
    say = out.print
    say(f"Reader: {found.email} ({found.cadence.value}, {found.schedule})", highlight=False,
        markup=False)
    if found.when is not None and found.local_when is not None:
        say(f"Next digest: {found.local_when:%A %Y-%m-%d %H:%M %Z} on their clock "
            f"({found.when:%Y-%m-%d %H:%M} UTC)", highlight=False, markup=False)
    else:
        say("Next digest: with the next post (instant)", highlight=False, markup=False)
    if found.edition_id is not None:
        say(f"Edition {found.edition_id}: already claimed, their batch waits for their hour",
            highlight=False, markup=False)
    if found.reason:
        say(found.reason, highlight=False, markup=False)
    if found.mail is None:
        return
    say(f"Subject: {found.mail.subject}", highlight=False, markup=False)
    for title in found.posts:
        say(f"  - {title}", highlight=False, markup=False)
    if out_file is not None:
        out_file.write_text(found.mail.html, encoding="utf-8")
        say(f"HTML written to {out_file}")
    else:
        say(found.mail.text, highlight=False, markup=False)
