"""Time charts of several series, drawn as inline SVG by the templates from geometry placed here.

`mlmanager.sites.charts` draws one sensor; this draws a monitoring chart: one coloured line per
series (a legend names them), the shaded areas where the attached rules break (their
thresholds, coloured by the rule's severity), the alerts as marks along the time axis (from
`started_at` to `resolved_at`, or to the chart's end while open) and gaps where a series has no
value (a `None` point ends a line). No JavaScript and no chart library, and no style
attributes (the Content-Security-Policy forbids them): colours are the classes of
monitoring/static/monitoring/monitoring.css (`series-0` … `series-7`, `band-<severity>`,
`alert-<severity>`).

Below the plot, the time axis is cut into slices that are links narrowing the chart to
themselves ("click a range to zoom"): `ZoomSlice` carries the start and end they link to.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone

from mlmanager.sites.charts import DATE_LABELS_FROM, Tick, value_ticks

CHART_WIDTH = 720
CHART_HEIGHT = 240
CHART_LEFT = 52
CHART_RIGHT = 10
CHART_TOP = 8
CHART_BOTTOM = 32  # the alert marks, then the time labels
ALERT_MARK_HEIGHT = 6
ALERT_MARK_MIN_WIDTH = 3.0
SERIES_COLOURS = 8  # series-0 … series-7, then the colours repeat
MAX_POINTS = 1200  # per series, after series_points' own limit; more are thinned evenly
ZOOM_SLICES = 6
TIME_STEPS = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=10),
    timedelta(minutes=15),
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=2),
    timedelta(hours=3),
    timedelta(hours=6),
    timedelta(hours=12),
    timedelta(days=1),
    timedelta(days=2),
    timedelta(days=7),
    timedelta(days=14),
    timedelta(days=30),
)
MAX_TIME_TICKS = 8


@dataclass(frozen=True)
class SeriesInput:
    """What to draw of one series: its name in the legend and its (moment, value) points,
    oldest first; a `None` value is a gap."""

    label: str
    points: Sequence[tuple[datetime, float | None]]


@dataclass(frozen=True)
class Threshold:
    """Where a rule breaks on one series, as `op` (above, below, outside, inside) with `value`
    or `low`/`high`; `severity` colours it."""

    op: str
    severity: str
    value: float | None = None
    low: float | None = None
    high: float | None = None
    label: str = ""


@dataclass(frozen=True)
class AlertSpan:
    alert_id: int
    severity: str
    title: str
    started_at: datetime
    resolved_at: datetime | None = None


@dataclass(frozen=True)
class Line:
    """One series: its polylines (one per stretch without a gap), single points between two
    gaps as dots, and its newest value (the live page's tests read it)."""

    index: int
    css: str
    label: str
    segments: list[str]
    dots: list[tuple[float, float]]
    points: int
    last_value: float | None


@dataclass(frozen=True)
class Band:
    css: str
    y: float
    height: float
    label: str


@dataclass(frozen=True)
class Limit:
    css: str
    y: float


@dataclass(frozen=True)
class AlertMark:
    alert_id: int
    css: str
    x: float
    width: float
    title: str
    open: bool


@dataclass(frozen=True)
class ZoomSlice:
    x: float
    width: float
    start: str  # ISO 8601, UTC
    end: str


@dataclass(frozen=True)
class TimeChart:
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    start: datetime
    end: datetime
    lines: list[Line]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    bands: list[Band]
    limits: list[Limit]
    alerts: list[AlertMark]
    slices: list[ZoomSlice] = field(default_factory=list)

    @property
    def plot_width(self) -> float:
        return self.right - self.left

    @property
    def plot_height(self) -> float:
        return self.bottom - self.top

    @property
    def points(self) -> int:
        return sum(line.points for line in self.lines)

    @property
    def alert_y(self) -> float:
        return self.bottom + 2

    @property
    def label_y(self) -> float:
        return self.bottom + ALERT_MARK_HEIGHT + 18


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _thinned(
    points: Sequence[tuple[datetime, float | None]], most: int
) -> list[tuple[datetime, float | None]]:
    """At most `most` points taken evenly, the newest kept; a gap stays a gap when it is
    taken (series_points already bounds its points, so this rarely drops any)."""
    if len(points) <= most:
        return list(points)
    step = len(points) / most
    kept = [points[int(index * step)] for index in range(most)]
    kept[-1] = points[-1]
    return kept


def _polyline(coordinates: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in coordinates)


def _number_label(value: float) -> str:
    return f"{value:.6g}"


def _threshold_values(threshold: Threshold) -> list[float]:
    return [
        float(value)
        for value in (threshold.value, threshold.low, threshold.high)
        if value is not None and _finite(value)
    ]


def time_chart(
    series: Sequence[SeriesInput],
    *,
    start: datetime,
    end: datetime,
    thresholds: Sequence[Threshold] = (),
    alerts: Sequence[AlertSpan] = (),
    width: int = CHART_WIDTH,
    height: int = CHART_HEIGHT,
) -> TimeChart:
    """Every series over [start, end] on one value axis. The axis covers the values and every
    threshold, so a rule's band shows even when no value reaches it."""
    if end <= start:
        end = start + timedelta(seconds=1)
    in_range = [
        _thinned(
            [(moment, value) for moment, value in item.points if start <= moment <= end], MAX_POINTS
        )
        for item in series
    ]
    values = [
        float(value)  # type: ignore[arg-type]  # _finite() checked it is a number
        for points in in_range
        for _m, value in points
        if _finite(value)
    ]
    candidates = values + [v for threshold in thresholds for v in _threshold_values(threshold)]
    low = min(candidates) if candidates else 0.0
    high = max(candidates) if candidates else 1.0
    if high == low:
        low, high = low - 1, high + 1
    margin = (high - low) * 0.05
    # Counts, shares and readings that are never negative keep the axis at 0.
    floor = 0.0 if low >= 0 > low - margin else low - margin
    ticks = value_ticks(floor, high + margin)
    low, high = min(ticks[0], floor), max(ticks[-1], high + margin)
    top = CHART_TOP
    bottom = height - CHART_BOTTOM
    right = width - CHART_RIGHT
    seconds = (end - start).total_seconds()

    def x(moment: datetime) -> float:
        share = (moment - start).total_seconds() / seconds
        return CHART_LEFT + min(max(share, 0.0), 1.0) * (right - CHART_LEFT)

    def y(value: float) -> float:
        return bottom - (value - low) / (high - low) * (bottom - top)

    lines = [
        _line(index, series[index].label, points, x, y) for index, points in enumerate(in_range)
    ]
    bands: list[Band] = []
    limits: list[Limit] = []
    for threshold in thresholds:
        _threshold_shapes(threshold, y, top=top, bottom=bottom, bands=bands, limits=limits)
    return TimeChart(
        width=width,
        height=height,
        left=CHART_LEFT,
        right=right,
        top=top,
        bottom=bottom,
        start=start,
        end=end,
        lines=lines,
        y_ticks=[Tick(round(y(value), 1), _number_label(value)) for value in ticks],
        x_ticks=time_ticks(start, end, x),
        bands=bands,
        limits=limits,
        alerts=_alert_marks(alerts, start=start, end=end, x=x),
        slices=_zoom_slices(start, end, x),
    )


def _line(
    index: int,
    label: str,
    points: Sequence[tuple[datetime, float | None]],
    x: Any,
    y: Any,
) -> Line:
    stretches: list[list[tuple[float, float]]] = [[]]
    count = 0
    last_value = None
    for moment, value in points:
        if not _finite(value):
            if stretches[-1]:
                stretches.append([])
            continue
        count += 1
        last_value = float(value)  # type: ignore[arg-type]
        stretches[-1].append((round(x(moment), 1), round(y(float(value)), 1)))  # type: ignore[arg-type]
    return Line(
        index=index,
        css=f"series-{index % SERIES_COLOURS}",
        label=label,
        segments=[_polyline(stretch) for stretch in stretches if len(stretch) >= 2],
        dots=[stretch[0] for stretch in stretches if len(stretch) == 1],
        points=count,
        last_value=last_value,
    )


def _threshold_shapes(
    threshold: Threshold,
    y: Any,
    *,
    top: float,
    bottom: float,
    bands: list[Band],
    limits: list[Limit],
) -> None:
    """The shaded area where the rule breaks and a dashed line at each of its limits."""
    css = threshold.severity or "warning"

    def area(upper_y: float, lower_y: float) -> None:
        upper_y, lower_y = max(upper_y, top), min(lower_y, bottom)
        if lower_y > upper_y:
            bands.append(
                Band(f"band-{css}", round(upper_y, 1), round(lower_y - upper_y, 1), threshold.label)
            )

    def limit(value: float) -> None:
        position = y(value)
        if top <= position <= bottom:
            limits.append(Limit(f"limit-{css}", round(position, 1)))

    op = threshold.op
    value = threshold.value if _finite(threshold.value) else None
    low = threshold.low if _finite(threshold.low) else None
    high = threshold.high if _finite(threshold.high) else None
    if op == "above" and value is not None:
        area(top, y(value))
        limit(value)
    elif op == "below" and value is not None:
        area(y(value), bottom)
        limit(value)
    elif op == "outside" and (low is not None or high is not None):
        if high is not None:
            area(top, y(high))
            limit(high)
        if low is not None:
            area(y(low), bottom)
            limit(low)
    elif op == "inside" and low is not None and high is not None:
        area(y(high), y(low))
        limit(high)
        limit(low)


def _alert_marks(
    alerts: Sequence[AlertSpan], *, start: datetime, end: datetime, x: Any
) -> list[AlertMark]:
    marks = []
    for alert in sorted(alerts, key=lambda item: item.started_at):
        finish = alert.resolved_at or end
        if finish < start or alert.started_at > end:
            continue
        left, right = x(max(alert.started_at, start)), x(min(finish, end))
        width = max(right - left, ALERT_MARK_MIN_WIDTH)
        left = min(left, x(end) - width)
        marks.append(
            AlertMark(
                alert_id=alert.alert_id,
                css=f"alert-{alert.severity}",
                x=round(left, 1),
                width=round(width, 1),
                title=alert.title,
                open=alert.resolved_at is None,
            )
        )
    return marks


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _zoom_slices(start: datetime, end: datetime, x: Any) -> list[ZoomSlice]:
    span = (end - start) / ZOOM_SLICES
    slices = []
    for index in range(ZOOM_SLICES):
        first = start + span * index
        last = start + span * (index + 1)
        slices.append(
            ZoomSlice(
                round(x(first), 1), round(x(last) - x(first), 1), iso_utc(first), iso_utc(last)
            )
        )
    return slices


def time_step(span: timedelta, most: int = MAX_TIME_TICKS) -> timedelta:
    """The smallest round step that puts at most `most` ticks on `span`."""
    for step in TIME_STEPS:
        if span / step <= most - 1:
            return step
    return TIME_STEPS[-1] * math.ceil(span / TIME_STEPS[-1] / (most - 1))


def time_ticks(start: datetime, end: datetime, x: Any) -> list[Tick]:
    """Ticks at round local times (every 5 minutes, hour, 6 hours, day…) in the current time
    zone, labelled with the time of day, or the date from DATE_LABELS_FROM on."""
    span = end - start
    step = time_step(span)
    local_start = timezone.localtime(start)
    if step >= timedelta(days=1):
        base = local_start.replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        base = local_start.replace(minute=0, second=0, microsecond=0)
        if step >= timedelta(hours=1):
            base = base.replace(hour=0)
    labels_dates = span >= DATE_LABELS_FROM
    ticks = []
    # Whole steps from the base up to the start, then one tick per step to the end.
    moment = base + step * max(0, math.floor((local_start - base) / step))
    while moment <= end:
        if moment >= start:
            local = timezone.localtime(moment)
            label = local.strftime("%d %b") if labels_dates else local.strftime("%H:%M")
            ticks.append(Tick(round(x(moment.astimezone(UTC)), 1), label))
        moment = moment + step
    return ticks


# --- histograms: a distribution now against a reference (training, the holdout) ----------------

HISTOGRAM_WIDTH = 420
HISTOGRAM_HEIGHT = 160
HISTOGRAM_LEFT = 36
HISTOGRAM_BOTTOM = 34  # room for the bins' labels
HISTOGRAM_TOP = 6


@dataclass(frozen=True)
class HistogramBar:
    x: float
    y: float
    width: float
    height: float
    share: float


@dataclass(frozen=True)
class HistogramBin:
    label: str
    center: float
    expected: HistogramBar
    actual: HistogramBar


@dataclass(frozen=True)
class Histogram:
    width: int
    height: int
    left: int
    bottom: float
    top: int
    bins: list[HistogramBin]
    y_ticks: list[Tick]
    label_every: int

    @property
    def right(self) -> int:
        return self.width


def histogram(
    labels: Sequence[str], expected: Sequence[float], actual: Sequence[float]
) -> Histogram | None:
    """Side-by-side bars of two share lists over the same bins (reference grey, now in the
    primary colour); None without bins. Labels are thinned to about eight along the axis."""
    count = min(len(labels), len(expected), len(actual))
    if not count:
        return None
    peak = max([*expected[:count], *actual[:count], 0.0]) or 1.0
    ticks = value_ticks(0.0, peak, 4)
    top_value = max(ticks[-1], peak)
    bottom = HISTOGRAM_HEIGHT - HISTOGRAM_BOTTOM
    slot = (HISTOGRAM_WIDTH - HISTOGRAM_LEFT - 4) / count
    bar = max(slot * 0.4, 1.0)

    def y(share: float) -> float:
        return bottom - share / top_value * (bottom - HISTOGRAM_TOP)

    def bar_of(left: float, share: float) -> HistogramBar:
        share = float(share) if _finite(share) else 0.0
        return HistogramBar(
            round(left, 1), round(y(share), 1), round(bar, 1), round(bottom - y(share), 1), share
        )

    bins = []
    for index in range(count):
        left = HISTOGRAM_LEFT + index * slot + (slot - 2 * bar) / 2
        bins.append(
            HistogramBin(
                label=str(labels[index]),
                center=round(HISTOGRAM_LEFT + (index + 0.5) * slot, 1),
                expected=bar_of(left, expected[index]),
                actual=bar_of(left + bar, actual[index]),
            )
        )
    return Histogram(
        width=HISTOGRAM_WIDTH,
        height=HISTOGRAM_HEIGHT,
        left=HISTOGRAM_LEFT,
        bottom=bottom,
        top=HISTOGRAM_TOP,
        bins=bins,
        y_ticks=[Tick(round(y(value), 1), f"{value:.0%}") for value in ticks],
        label_every=max(1, math.ceil(count / 8)),
    )
