"""What the readers' forms show for their choices: time zones by region, hours, weekdays,
topics. The values are checked by ``digest.readers.choices``; this only lays them out."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from digest.config import Settings
from digest.readers.choices import listed_zones, schedule_time, zone_names
from digest.slots import WEEKDAYS, weekday_choosable
from digest.web.reader_assets import SCRIPT_URL

__all__ = ["HOURS", "WEEKDAY_CHOICES", "choice_context", "zone_groups"]

HOURS = [(str(hour), f"{hour:02d}:00") for hour in range(24)]
WEEKDAY_CHOICES = [(str(day), name) for day, name in enumerate(WEEKDAYS)]


def _label(zone: str) -> str:
    """ "America/Argentina/Buenos_Aires" -> "Argentina/Buenos Aires"."""
    return zone.partition("/")[2].replace("_", " ") or zone


@functools.cache
def _groups(extra: frozenset[str]) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    groups: dict[str, list[tuple[str, str]]] = {}
    for zone in sorted(set(listed_zones()) | extra):
        region = zone.partition("/")[0] if "/" in zone else "Other"
        groups.setdefault(region, []).append((zone, _label(zone)))
    return tuple((region, tuple(zones)) for region, zones in sorted(groups.items()))


def zone_groups(extra: Iterable[str | None] = ()) -> tuple[tuple[str, tuple[tuple[str, str],
                                                                          ...]], ...]:
    """(region, ((zone, label), ...)) for a <select>, plus the known zones in ``extra``."""
    return _groups(frozenset(z for z in extra if z and z in zone_names()))


def choice_context(settings: Settings, zone: str | None) -> dict[str, Any]:
    """The template values of the zone and hour selects (``zone``: the one selected)."""
    selected = zone or settings.timezone
    return {"zone_groups": zone_groups((selected, settings.timezone)), "zone": selected,
            "hours": HOURS, "weekdays": WEEKDAY_CHOICES if weekday_choosable(settings) else (),
            "schedule_time": schedule_time(settings), "operator_zone": settings.timezone,
            "zone_script": SCRIPT_URL}
