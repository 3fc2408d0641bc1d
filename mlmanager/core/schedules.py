"""Wall-clock schedules: "every day (or every such weekday) at HH:MM in this time zone".

Monitoring's e-mailed reports and the models' scheduled retraining share the arithmetic: each
asks for the latest slot at or before now, then claims it once however many schedulers run.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def zone_or_utc(name: str) -> ZoneInfo:
    """The zone called `name`, or UTC for an empty or unknown name (a stored preference may
    name a zone this machine's tz database lacks)."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def latest_slot(*, now: datetime, at: time, time_zone: str, weekday: int | None = None) -> datetime:
    """The latest moment at or before `now` that is `at` (a wall-clock time) in `time_zone`,
    on `weekday` (0 = Monday) when given, else on any day; in UTC."""
    zone = zone_or_utc(time_zone)
    local = now.astimezone(zone)
    wall = at.replace(tzinfo=None)
    day = local.date()
    step = timedelta(days=1)
    if weekday is not None:
        day -= timedelta(days=(day.weekday() - weekday) % 7)
        step = timedelta(days=7)
    slot = datetime.combine(day, wall, tzinfo=zone)
    if slot > local:
        slot = datetime.combine(day - step, wall, tzinfo=zone)
    return slot.astimezone(UTC)
