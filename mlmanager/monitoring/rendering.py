"""Charts drawn as PNG images for e-mails (scheduled reports), with matplotlib's Agg canvas.

No pyplot: its global figure manager is neither needed nor thread-safe; each image is its own
`Figure`. Drawing is serialised by a lock anyway, since matplotlib's font and text caches are
shared by the threads of one process. Times are shown in the recipient's time zone.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from matplotlib import dates as mdates
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

WIDTH_IN, HEIGHT_IN, DPI = 8.0, 3.0, 100  # 800 × 300 pixels: readable in a mail client
LINE_COLOURS = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2")
SEVERITY_COLOURS = {
    "info": "#93c5fd",
    "warning": "#fcd34d",
    "critical": "#f87171",
    "emergency": "#b91c1c",
}
_drawing = threading.Lock()


@dataclass(frozen=True)
class Line:
    label: str
    points: Sequence[tuple[datetime, float | None]]


@dataclass(frozen=True)
class Span:
    """An alert on the time axis: from `start` to `end` (still open: the period's end)."""

    start: datetime
    end: datetime | None
    severity: str


def chart_png(
    *,
    title: str,
    lines: Sequence[Line],
    start: datetime,
    end: datetime,
    time_zone: ZoneInfo,
    spans: Sequence[Span] = (),
    no_data_text: str = "No data in this period",
) -> bytes:
    """The chart as a PNG: one line per series (gaps where a value is None), alerts shaded
    by severity behind them, the time axis from `start` to `end`."""
    with _drawing:
        figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot(1, 1, 1)
        axes.set_title(title, fontsize=11, loc="left")
        drawn = False
        for index, line in enumerate(lines):
            if not line.points:
                continue
            times = [moment.astimezone(time_zone) for moment, _value in line.points]
            values = [float("nan") if value is None else value for _moment, value in line.points]
            axes.plot(
                times,  # type: ignore[arg-type]
                values,
                label=line.label,
                color=LINE_COLOURS[index % len(LINE_COLOURS)],
                linewidth=1.4,
            )
            drawn = True
        for span in spans:
            axes.axvspan(
                max(span.start, start).astimezone(time_zone),  # type: ignore[arg-type]
                min(span.end or end, end).astimezone(time_zone),  # type: ignore[arg-type]
                color=SEVERITY_COLOURS.get(span.severity, "#d1d5db"),
                alpha=0.35,
                linewidth=0,
            )
        axes.set_xlim(start.astimezone(time_zone), end.astimezone(time_zone))  # type: ignore[arg-type]
        locator = mdates.AutoDateLocator(tz=time_zone)
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=time_zone))
        axes.grid(True, color="#e5e7eb", linewidth=0.6)
        axes.tick_params(labelsize=8)
        if drawn:
            if len(lines) > 1:
                axes.legend(fontsize=8, loc="upper left", frameon=False)
        else:
            axes.text(
                0.5,
                0.5,
                no_data_text,
                transform=axes.transAxes,
                ha="center",
                va="center",
                color="#6b7280",
            )
            axes.set_yticks([])
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return buffer.getvalue()
