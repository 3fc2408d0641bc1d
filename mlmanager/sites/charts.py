"""Charts of a site's sensors, drawn as inline SVG by the templates from geometry placed here.

As in mlmanager.machines.charts: no JavaScript and no chart library, and no style attributes
(the Content-Security-Policy forbids them): colours come from the classes in
sites/static/sites/sites.css. A time series shows the sensor's warning and critical bands as
shaded areas beyond their limits, with a dashed line at each limit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

SPARK_WIDTH = 120
SPARK_HEIGHT = 28
SPARK_MAX_POINTS = 120
CHART_WIDTH = 640
CHART_HEIGHT = 200
CHART_LEFT = 48
CHART_RIGHT = 8
CHART_TOP = 8
CHART_BOTTOM = 22
CHART_MAX_POINTS = 600
# Above this range the time axis is labelled with dates, below with times of day.
DATE_LABELS_FROM = timedelta(days=2)


@dataclass(frozen=True)
class Sparkline:
    width: int
    height: int
    polyline: str


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class Band:
    """A shaded area of the plot (warning or critical), `css` says which."""

    css: str
    y: float
    height: float


@dataclass(frozen=True)
class Limit:
    css: str
    y: float


@dataclass(frozen=True)
class SeriesChart:
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    polyline: str
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    bands: list[Band]
    limits: list[Limit]
    points: int

    @property
    def plot_width(self) -> int:
        return self.right - self.left


def _thinned(points: Sequence[tuple[datetime, float]], most: int) -> list[tuple[datetime, float]]:
    finite = [(moment, float(value)) for moment, value in points if _finite(value)]
    if len(finite) <= most:
        return finite
    step = len(finite) / most
    kept = [finite[int(index * step)] for index in range(most)]
    kept[-1] = finite[-1]  # the newest value stays in
    return kept


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _limit(value: float | None) -> float | None:
    """A band limit to draw: a finite number, else None."""
    return float(value) if value is not None and _finite(value) else None


def sparkline(points: Sequence[tuple[datetime, float]]) -> Sparkline | None:
    """A small line of the values, oldest left; None under two points."""
    kept = _thinned(points, SPARK_MAX_POINTS)
    if len(kept) < 2:
        return None
    values = [value for _moment, value in kept]
    low, high = min(values), max(values)
    spread = (high - low) or 1.0
    step = (SPARK_WIDTH - 2) / (len(kept) - 1)
    coordinates = [
        (1 + index * step, SPARK_HEIGHT - 2 - (value - low) / spread * (SPARK_HEIGHT - 4))
        for index, value in enumerate(values)
    ]
    return Sparkline(SPARK_WIDTH, SPARK_HEIGHT, _polyline(coordinates))


def _polyline(coordinates: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in coordinates)


def value_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About `count` round values (steps of 1, 2, 2.5 or 5 × 10^k) covering [low, high]."""
    if high <= low:
        return [low]
    raw_step = (high - low) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw_step))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw_step)
    first = math.floor(low / step + 1e-9) * step
    ticks: list[float] = []
    while first + len(ticks) * step < high + step * 0.999:
        ticks.append(round(first + len(ticks) * step, 10))
    return ticks


def _number_label(value: float) -> str:
    return f"{value:.6g}"


def series_chart(
    points: Sequence[tuple[datetime, float]],
    *,
    start: datetime,
    end: datetime,
    warning: tuple[float | None, float | None] = (None, None),
    critical: tuple[float | None, float | None] = (None, None),
) -> SeriesChart:
    """Values over [start, end) with the bands beyond the warning and critical limits. The
    value axis covers the values and every limit, so a band is drawn even when no value
    reaches it."""
    kept = _thinned(points, CHART_MAX_POINTS)
    warning = (_limit(warning[0]), _limit(warning[1]))
    critical = (_limit(critical[0]), _limit(critical[1]))
    limits = [value for value in (*warning, *critical) if value is not None]
    candidates = [value for _moment, value in kept] + limits
    low = min(candidates) if candidates else 0.0
    high = max(candidates) if candidates else 1.0
    if high == low:
        low, high = low - 1, high + 1
    margin = (high - low) * 0.05
    ticks = value_ticks(low - margin, high + margin)
    low, high = min(ticks[0], low - margin), max(ticks[-1], high + margin)
    plot_bottom = CHART_HEIGHT - CHART_BOTTOM
    plot_right = CHART_WIDTH - CHART_RIGHT
    seconds = max((end - start).total_seconds(), 1.0)

    def x(moment: datetime) -> float:
        share = (moment - start).total_seconds() / seconds
        return CHART_LEFT + min(max(share, 0.0), 1.0) * (plot_right - CHART_LEFT)

    def y(value: float) -> float:
        return plot_bottom - (value - low) / (high - low) * (plot_bottom - CHART_TOP)

    return SeriesChart(
        width=CHART_WIDTH,
        height=CHART_HEIGHT,
        left=CHART_LEFT,
        right=plot_right,
        top=CHART_TOP,
        bottom=plot_bottom,
        polyline=_polyline([(x(moment), y(value)) for moment, value in kept]),
        y_ticks=[Tick(round(y(value), 1), _number_label(value)) for value in ticks],
        x_ticks=_time_ticks(start, end, x),
        bands=_bands(warning, critical, y, top=CHART_TOP, bottom=plot_bottom),
        limits=[
            Limit(css, round(y(value), 1))
            for css, values in (("limit-warning", warning), ("limit-critical", critical))
            for value in values
            if value is not None
        ],
        points=len(kept),
    )


def _bands(
    warning: tuple[float | None, float | None],
    critical: tuple[float | None, float | None],
    y: Any,
    *,
    top: float,
    bottom: float,
) -> list[Band]:
    """Shaded areas: critical beyond the critical limits, warning between a warning limit and
    the critical one on the same side (or the plot's edge)."""
    bands = []

    def area(css: str, upper_y: float, lower_y: float) -> None:
        upper_y, lower_y = max(upper_y, top), min(lower_y, bottom)
        if lower_y > upper_y:
            bands.append(Band(css, round(upper_y, 1), round(lower_y - upper_y, 1)))

    warning_min, warning_max = warning
    critical_min, critical_max = critical
    if critical_max is not None:
        area("band-critical", top, y(critical_max))
    if warning_max is not None:
        area("band-warning", top if critical_max is None else y(critical_max), y(warning_max))
    if critical_min is not None:
        area("band-critical", y(critical_min), bottom)
    if warning_min is not None:
        area("band-warning", y(warning_min), bottom if critical_min is None else y(critical_min))
    return bands


def _time_ticks(start: datetime, end: datetime, x: Any, count: int = 6) -> list[Tick]:
    span = end - start
    labels_dates = span >= DATE_LABELS_FROM
    ticks = []
    for index in range(count):
        moment = start + span * index / (count - 1)
        local = timezone.localtime(moment)
        label = local.strftime("%d %b") if labels_dates else local.strftime("%H:%M")
        ticks.append(Tick(round(x(moment), 1), label))
    return ticks
