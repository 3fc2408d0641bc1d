"""Small per-column charts, drawn as inline SVG by the templates from the profile's numbers.

Server-side geometry keeps the pages free of JavaScript and chart libraries; a histogram of 20
bars or a top-10 bar chart is a handful of rectangles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

WIDTH = 240
HEIGHT = 64


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    count: int


@dataclass(frozen=True)
class Chart:
    kind: str  # "histogram" | "bars"
    bars: list[Bar]
    width: int = WIDTH
    height: int = HEIGHT
    first_label: str = ""
    last_label: str = ""


# Columns whose distribution says nothing: every value once, or one value.
_NO_CHART_TYPES = {"identifier", "constant", "empty"}


def short_label(value: Any) -> str:
    """Axis and tooltip labels: 4 significant digits for numbers, dates without a midnight."""
    if isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, str) and value.endswith("T00:00:00"):
        text = value.removesuffix("T00:00:00")
    else:
        text = str(value)
    return text if len(text) <= 24 else text[:23] + "…"


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
        counts = [int(item["count"]) for item in top]
        labels = [short_label(item["value"]) for item in top]
        return _vertical("bars", counts, labels)
    return None


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
