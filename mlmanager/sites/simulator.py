"""Realistic readings for the demo site (`mlmanager simulate`), as a pure function of time.

A value is a daily cycle (a cosine over the hour of the day, peaking at the profile's hour),
plus noise, plus now and then an excursion: in some ten-minute windows the value rises (or
falls) past the warning band, sometimes past the critical one, and comes back, so the
dashboard shows alerts opening and closing. Everything derives from (seed, sensor, time): the
same moment gives the same value, and tests can check the shape over simulated days without a
clock or a random state.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "DEMO_SENSORS",
    "EXCURSION_CHANCE",
    "EXCURSION_WINDOW_S",
    "SensorProfile",
    "profile_for",
    "simulated_value",
]

EXCURSION_WINDOW_S = 600
# About six excursions a day per sensor: a new user sees one within the first hour or so.
EXCURSION_CHANCE = 0.04
SEVERE_CHANCE = 0.35


@dataclass(frozen=True)
class SensorProfile:
    """How one sensor's values behave, and the bands its sensor is created with."""

    name: str
    sensor_type: str
    unit: str
    base: float
    daily_amplitude: float
    peak_hour: float
    noise: float
    warning_min: float | None = None
    warning_max: float | None = None
    critical_min: float | None = None
    critical_max: float | None = None


DEMO_SENSORS: tuple[SensorProfile, ...] = (
    SensorProfile("Kiln temperature", "temperature", "°C", 22.0, 4.0, 15.0, 0.3, 10, 30, 5, 35),
    SensorProfile("Hall humidity", "humidity", "%", 55.0, 8.0, 5.0, 1.0, 30, 70, 20, 80),
    SensorProfile("Air pressure", "pressure", "hPa", 1013.0, 3.0, 10.0, 0.4, 995, 1030, 985, 1040),
    SensorProfile("Mill vibration", "vibration", "Hz", 45.0, 5.0, 14.0, 1.2, None, 60, None, 70),
    SensorProfile("Silo level", "level", "%", 60.0, 15.0, 18.0, 0.8, 15, 90, 5, 97),
)


def profile_for(
    *,
    name: str,
    sensor_type: str,
    unit: str,
    warning_min: float | None,
    warning_max: float | None,
    critical_min: float | None,
    critical_max: float | None,
) -> SensorProfile:
    """A profile for any sensor (`simulate --site`): the demo's profile of its type, moved
    into the sensor's own warning band when it has one."""
    known = next((p for p in DEMO_SENSORS if p.sensor_type == sensor_type), None)
    low, high = warning_min, warning_max
    if low is not None and high is not None and high > low:
        base, spread = (low + high) / 2, (high - low) / 2
    elif known is not None:
        base, spread = known.base, known.daily_amplitude * 2.5
    else:
        base = high - 10.0 if high is not None else (low + 10.0 if low is not None else 50.0)
        spread = 4.0
    return SensorProfile(
        name=name,
        sensor_type=sensor_type,
        unit=unit,
        base=base,
        daily_amplitude=spread * 0.3,
        peak_hour=known.peak_hour if known is not None else 14.0,
        noise=spread * 0.04,
        warning_min=warning_min,
        warning_max=warning_max,
        critical_min=critical_min,
        critical_max=critical_max,
    )


def simulated_value(profile: SensorProfile, moment: datetime, *, seed: str = "demo") -> float:
    """The profile's value at `moment` (an aware datetime), rounded to 2 decimals."""
    seconds = moment.timestamp()
    hour = moment.hour + moment.minute / 60 + moment.second / 3600
    daily = profile.base + profile.daily_amplitude * math.cos(
        2 * math.pi * (hour - profile.peak_hour) / 24
    )
    noisy = daily + random.Random(f"{seed}:{profile.name}:{int(seconds)}").gauss(0, profile.noise)
    excursion = _excursion(profile, seconds, seed)
    if excursion is None:
        return round(noisy, 2)
    peak, shape = excursion
    return round((1 - shape) * noisy + shape * peak, 2)


def _excursion(profile: SensorProfile, seconds: float, seed: str) -> tuple[float, float] | None:
    """(the value at the excursion's peak, how far into it: 0 → 1 → 0), or None outside one."""
    window = int(seconds // EXCURSION_WINDOW_S)
    chooser = random.Random(f"{seed}:{profile.name}:excursion:{window}")
    if chooser.random() >= EXCURSION_CHANCE:
        return None
    severe = chooser.random() < SEVERE_CHANCE
    can_rise = profile.warning_max is not None
    can_fall = profile.warning_min is not None
    if not (can_rise or can_fall):
        return None
    rising = can_rise and (not can_fall or chooser.random() < 0.7)
    if rising:
        limit = profile.critical_max if severe and profile.critical_max is not None else None
        target = limit if limit is not None else profile.warning_max
    else:
        limit = profile.critical_min if severe and profile.critical_min is not None else None
        target = limit if limit is not None else profile.warning_min
    assert target is not None
    # Past the limit by a margin larger than the noise, so the peak is clearly outside.
    margin = max(3 * profile.noise, 0.05 * abs(target - profile.base), 0.1)
    peak = target + margin if rising else target - margin
    phase = (seconds - window * EXCURSION_WINDOW_S) / EXCURSION_WINDOW_S
    return peak, math.sin(math.pi * phase)
