"""What a reader chooses for themselves: time zone, hour, weekday (their slot) and topics.

Every value comes from a form, so every value is hostile: a zone must be one of the IANA
names this machine knows (``zoneinfo``), an hour 0-23, a weekday 0 (Monday) to 6, a topic one
of the visible topics (not hidden, not merged into another). ``ChoiceError`` says what is
wrong and nothing is changed. The operator's own zone is stored as NULL: a reader in it follows
DIGEST_TIMEZONE, and the readers who chose nothing share one delivery slot. A slot is only ever
changed through ``digest.slots.set_slot``, which keeps the slot an edition already planned.
"""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from digest.config import Settings
from digest.errors import SubscriberError
from digest.feeds.topic_catalog import visible_topics
from digest.schedule import fire_time, parse_schedule, parsed
from digest.slots import Slot, describe, set_slot, slot_of
from digest.store.models import Cadence, Subscriber

__all__ = ["MAX_TOPICS", "REGIONS", "ChoiceError", "Choices", "apply_choices", "describe_choice",
           "forget_choices", "listed_zones", "parse_hour", "parse_topics", "parse_weekday",
           "parse_zone", "schedule_time", "signup_slot", "visible_topics", "zone_names"]

# The zones a reader is offered, by region (others are accepted when a browser sends them).
REGIONS = ("Africa", "America", "Antarctica", "Arctic", "Asia", "Atlantic", "Australia",
           "Europe", "Indian", "Pacific")
MAX_TOPICS = 500  # more ticked boxes than that is not a person
_NOT_ZONES = frozenset({"localtime", "Factory"})  # in tzdata, but not places


class ChoiceError(SubscriberError):
    """A reader's choice that cannot be taken; the message says why, for the reader."""


@functools.cache
def zone_names() -> frozenset[str]:
    """Every IANA time zone name this machine knows."""
    return frozenset(zoneinfo.available_timezones() - _NOT_ZONES)


@functools.cache
def listed_zones() -> tuple[str, ...]:
    """The zones a form offers: the regions' zones and UTC, sorted."""
    return tuple(sorted(z for z in zone_names() if z.split("/")[0] in REGIONS or z == "UTC"))


def parse_zone(settings: Settings, text: str | None) -> str | None:
    """A submitted zone: None for the operator's own (or none given); ChoiceError if unknown."""
    text = (text or "").strip()
    if not text or text == settings.timezone:
        return None
    if len(text) > 64 or text not in zone_names():
        shown = text[:64].encode("ascii", "replace").decode()
        raise ChoiceError(f"unknown time zone {shown!r}; choose one from the list")
    return text


def _small_int(text: str | None, top: int, what: str) -> int | None:
    text = (text or "").strip()
    if not text:
        return None
    if not (len(text) <= 2 and text.isascii() and text.isdigit()) or int(text) > top:
        raise ChoiceError(f"{what} must be a whole number from 0 to {top}")
    return int(text)


def parse_hour(text: str | None) -> int | None:
    """A submitted hour: None for the schedule's time; ChoiceError unless 0-23."""
    return _small_int(text, 23, "the hour")


def parse_weekday(text: str | None) -> int | None:
    """A submitted weekday: None for the schedule's day; ChoiceError unless 0 (Monday)-6."""
    return _small_int(text, 6, "the day (0 Monday to 6 Sunday)")


def parse_topics(session: Session, values: Sequence[str]) -> list[int] | None:
    """Ticked topic ids: None (everything) when none is; ChoiceError for a foreign one."""
    if len(values) > MAX_TOPICS:
        raise ChoiceError(f"too many topics ({len(values)}); tick at most {MAX_TOPICS}")
    wanted: list[int] = []
    for value in values:
        text = value.strip()
        if not (text.isascii() and text.isdigit() and len(text) <= 18):
            raise ChoiceError("a topic must be one of the list's boxes")
        if int(text) not in wanted:
            wanted.append(int(text))
    if not wanted:
        return None
    known = {topic.id for topic in visible_topics(session)}
    if not set(wanted) <= known:
        raise ChoiceError("a ticked topic is no longer offered; reload the page and choose "
                          "again")
    return sorted(wanted)


@dataclass(frozen=True)
class Choices:
    """What a preferences form sends; a field left as None is kept as it is."""

    timezone: str | None = None
    hour: str | None = None
    weekday: str | None = None
    topics: Sequence[str] | None = None


def apply_choices(session: Session, settings: Settings, reader: Subscriber, choices: Choices,
                  now: datetime) -> None:
    """Check every field first, then change the reader; ChoiceError changes nothing."""
    old = slot_of(reader)
    zone = old.timezone if choices.timezone is None else parse_zone(settings, choices.timezone)
    hour = old.hour if choices.hour is None else parse_hour(choices.hour)
    weekday = old.weekday if choices.weekday is None else parse_weekday(choices.weekday)
    topics = reader.topic_ids if choices.topics is None else parse_topics(session,
                                                                          choices.topics)
    set_slot(reader, Slot(zone, weekday, hour), now)
    reader.topic_ids = topics


def signup_slot(settings: Settings, timezone: str | None, hour: str | int | None) -> Slot:
    """The slot a sign-up form asks for; what cannot be read is left to the operator's.

    A sign-up never fails for these fields (a form scraped onto another site may send
    anything): an unknown zone or hour is dropped, not an error.
    """
    try:
        zone = parse_zone(settings, timezone)
    except ChoiceError:
        zone = None
    try:
        chosen = parse_hour(str(hour) if isinstance(hour, int) else hour)
    except ChoiceError:
        chosen = None
    return Slot(zone, None, chosen)


def forget_choices(reader: Subscriber, now: datetime) -> None:
    """Erase the reader's choices with the rest of their data (a time zone says where they
    live)."""
    set_slot(reader, Slot(), now)
    reader.slot_history = None
    reader.topic_ids = None


def describe_choice(settings: Settings, reader: Subscriber) -> str:
    """When the reader's digest comes, in words on their own clock ("Mondays at 08:00
    (Asia/Tokyo)"); a weekly reader who kept the schedule's day is told which day it is."""
    slot = slot_of(reader)
    if reader.cadence is Cadence.WEEKLY and slot.weekday is None:
        days = parse_schedule(settings.schedule).day_of_week
        if len(days) == 1:  # celery counts from Sunday (0)
            slot = Slot(slot.timezone, (next(iter(days)) - 1) % 7, slot.hour)
    return describe(settings, reader.cadence, slot)


def schedule_time(settings: Settings) -> str:
    """The schedule's time of day ("08:00"), which a reader who keeps it gets on their clock."""
    return f"{fire_time(parsed(settings.schedule)):%H:%M}"
