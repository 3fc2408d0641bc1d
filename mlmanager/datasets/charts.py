"""Small per-column charts, drawn as inline SVG by the templates from the profile's numbers.

Server-side geometry keeps the pages free of JavaScript and chart libraries; a histogram of 20
bars or a top-10 bar chart is a handful of rectangles. Categories are drawn as horizontal bars,
one row per value with its name beside it: a column of unnamed vertical bars said nothing about
which value was which (issue 12).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlmanager.core import formatting

WIDTH = 240
HEIGHT = 64


# Category bars: a row per value, its name in the first LABEL_WIDTH pixels, its count after the
# bar (COUNT_WIDTH holds "1,000,000" at the chart's 10 px type).
ROW_HEIGHT = 14
BAR_THICKNESS = 10
LABEL_WIDTH = 86
COUNT_WIDTH = 44
CATEGORY_LABEL_CHARS = 14


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    count: int
    # Category bars only: the value's name (shortened to fit), where its text and the count go.
    name: str = ""
    text_y: float = 0
    count_x: float = 0


@dataclass(frozen=True)
class Chart:
    kind: str  # "histogram" | "categories"
    bars: list[Bar]
    width: int = WIDTH
    height: int = HEIGHT
    first_label: str = ""
    last_label: str = ""


# Columns whose distribution says nothing: every value once, or one value.
_NO_CHART_TYPES = {"identifier", "constant", "empty"}


def short_label(value: Any, limit: int = 24) -> str:
    """Axis and tooltip labels: 4 significant digits for numbers, dates without a midnight,
    at most `limit` characters — in the request's preferences (core.formatting)."""
    if isinstance(value, float):
        text = formatting.format_significant(value)
    elif isinstance(value, str):
        text = formatting.format_iso(value)
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def column_chart(column: dict[str, Any]) -> Chart | None:
    if column.get("type") in _NO_CHART_TYPES:
        return None
    stats = column.get("stats") or {}
    histogram = stats.get("histogram")
    if histogram and histogram.get("counts"):
        counts = [int(c) for c in histogram["counts"]]
        edges = histogram.get("edges") or []
        labels = [
            f"{short_label(edges[i])} – {short_label(edges[i + 1])}" if i + 1 < len(edges) else ""
            for i in range(len(counts))
        ]
        # The axis ends at the data's own min and max: integer bins end one past the max.
        return _vertical(
            "histogram",
            counts,
            labels,
            first=short_label(stats.get("min", edges[0] if edges else "")),
            last=short_label(stats.get("max", edges[-1] if edges else "")),
        )
    top = stats.get("top_values")
    if top:
        return _categories(top)
    return None


def _categories(top: list[dict[str, Any]]) -> Chart:
    """One horizontal bar per value, longest for the most frequent; the name at the left."""
    peak = max(int(item["count"]) for item in top) or 1
    room = WIDTH - LABEL_WIDTH - COUNT_WIDTH
    bars = []
    for index, item in enumerate(top):
        count = int(item["count"])
        length = 0 if count == 0 else max(1.0, room * count / peak)
        top_edge = index * ROW_HEIGHT + (ROW_HEIGHT - BAR_THICKNESS) / 2
        bars.append(
            Bar(
                x=LABEL_WIDTH,
                y=top_edge,
                width=round(length, 2),
                height=BAR_THICKNESS,
                label=short_label(item["value"]),
                count=count,
                name=short_label(item["value"], CATEGORY_LABEL_CHARS),
                text_y=index * ROW_HEIGHT + ROW_HEIGHT / 2,
                count_x=round(LABEL_WIDTH + length + 3, 2),
            )
        )
    return Chart(kind="categories", bars=bars, height=len(top) * ROW_HEIGHT)


def _vertical(
    kind: str, counts: list[int], labels: list[str], first: str = "", last: str = ""
) -> Chart:
    peak = max(counts) or 1
    slot = WIDTH / len(counts)
    gap = 1 if slot > 3 else 0
    bars = []
    for index, (count, label) in enumerate(zip(counts, labels, strict=True)):
        height = 0 if count == 0 else max(1.0, HEIGHT * count / peak)
        bars.append(
            Bar(
                x=round(index * slot, 2),
                y=round(HEIGHT - height, 2),
                width=round(max(slot - gap, 0.5), 2),
                height=round(height, 2),
                label=label,
                count=count,
            )
        )
    return Chart(kind=kind, bars=bars, first_label=first, last_label=last)


# Classes drawn in the class balance chart; the rest are counted in a note.
CLASS_CHART_MAX = 30


def class_balance_chart(classes: dict[str, int]) -> Chart | None:
    """An image dataset's images per class, most frequent first, as category bars."""
    if not classes:
        return None
    ranked = sorted(classes.items(), key=lambda item: (-item[1], item[0]))[:CLASS_CHART_MAX]
    return _categories([{"value": name, "count": count} for name, count in ranked])
