"""The text of `digest subscribers show`: one reader, laid out for the terminal."""

from __future__ import annotations

from datetime import datetime

from digest.readers.profile import ReaderProfile


def _when(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC" if at is not None else "-"


def describe_profile(p: ReaderProfile) -> str:
    """Who, since when, with what consent, and what became of their last editions."""
    lines = [(p.email or "(erased)") + (f" ({p.name})" if p.name else ""),
             f"  status: {p.status}" + (f" ({p.suppressed_reason})" if p.suppressed_reason
                                        else ""),
             f"  signed up: {_when(p.created_at)}; confirmed: {_when(p.confirmed_at)}"
             + (f"; left: {_when(p.unsubscribed_at)}" if p.unsubscribed_at else ""),
             f"  consent: {_when(p.consent_at)} from {p.consent_ip or 'no IP recorded'}"
             f" via {p.consent_source or 'unknown source'}",
             f"  preferences: {p.cadence}" + (", paused" if p.paused else ""),
             f"  when: {p.delivery}; topics: {', '.join(p.topics) or 'everything'}",
             "  last editions:"]
    if not p.editions:
        lines.append("    none yet")
    for e in p.editions:
        lines.append(f"    #{e.edition_id} {e.key} \u201c{e.subject}\u201d: {e.outcome} "
                     f"(handed over {_when(e.handed_at)}"
                     + (f", last news {_when(e.updated_at)}" if e.updated_at else "") + ")")
    return "\n".join(lines)
