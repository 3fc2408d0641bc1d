"""Charts of a model version, drawn as inline SVG by the templates from server-side geometry.

The same approach as mlmanager.datasets.charts (and its label shortening): no JavaScript and
no chart library, just rectangles and circles placed here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from mlmanager.datasets.charts import short_label

IMPORTANCE_WIDTH = 360
IMPORTANCE_LABEL_WIDTH = 150
IMPORTANCE_ROW = 18
IMPORTANCE_MAX_FEATURES = 20
SCATTER_SIZE = 280
SCATTER_MARGIN = 8
SCATTER_MAX_POINTS = 1000


@dataclass(frozen=True)
class ImportanceBar:
    y: float
    width: float
    label: str
    value: str
    std: str


@dataclass(frozen=True)
class ImportanceChart:
    bars: list[ImportanceBar]
    width: int
    height: int
    label_width: int = IMPORTANCE_LABEL_WIDTH
    row_height: int = IMPORTANCE_ROW


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def importance_chart(features: list[dict[str, Any]]) -> ImportanceChart | None:
    """Horizontal bars of permutation importance, largest first. A negative importance (the
    feature's noise helped by chance) is drawn as no bar, with its value in the tooltip."""
    rows = [
        (str(item.get("feature", "")), _number(item.get("importance")) or 0.0, item.get("std"))
        for item in features
    ]
    rows.sort(key=lambda row: row[1], reverse=True)
    rows = rows[:IMPORTANCE_MAX_FEATURES]
    if not rows:
        return None
    peak = max(value for _name, value, _std in rows) or 1.0
    span = IMPORTANCE_WIDTH - IMPORTANCE_LABEL_WIDTH - 4
    bars = [
        ImportanceBar(
            y=index * IMPORTANCE_ROW,
            width=round(max(0.0, value) / peak * span, 2) if peak > 0 else 0.0,
            label=short_label(name),
            value=short_label(value),
            std=short_label(_number(std)) if _number(std) is not None else "",
        )
        for index, (name, value, std) in enumerate(rows)
    ]
    return ImportanceChart(bars=bars, width=IMPORTANCE_WIDTH, height=len(bars) * IMPORTANCE_ROW)


@dataclass(frozen=True)
class ScatterChart:
    points: list[tuple[float, float]]
    size: int
    # The diagonal where predicted equals actual, from (low, low) to (high, high).
    diagonal: tuple[float, float, float, float]
    low_label: str
    high_label: str


def scatter_chart(actual: list[Any], predicted: list[Any]) -> ScatterChart | None:
    """Predicted against actual values, on one shared scale so the diagonal is "perfect"."""
    pairs = [
        (a, p)
        for a, p in zip((_number(v) for v in actual), (_number(v) for v in predicted), strict=False)
        if a is not None and p is not None
    ]
    if not pairs:
        return None
    if len(pairs) > SCATTER_MAX_POINTS:
        step = len(pairs) / SCATTER_MAX_POINTS
        pairs = [pairs[int(index * step)] for index in range(SCATTER_MAX_POINTS)]
    low = min(min(a, p) for a, p in pairs)
    high = max(max(a, p) for a, p in pairs)
    spread = (high - low) or 1.0
    inner = SCATTER_SIZE - 2 * SCATTER_MARGIN

    def x(value: float) -> float:
        return round(SCATTER_MARGIN + (value - low) / spread * inner, 1)

    def y(value: float) -> float:
        return round(SCATTER_SIZE - SCATTER_MARGIN - (value - low) / spread * inner, 1)

    return ScatterChart(
        points=[(x(a), y(p)) for a, p in pairs],
        size=SCATTER_SIZE,
        diagonal=(x(low), y(low), x(high), y(high)),
        low_label=short_label(low),
        high_label=short_label(high),
    )


# The darkest cell's background opacity: its count must stay readable.
CONFUSION_MAX_OPACITY = 0.55


@dataclass(frozen=True)
class ConfusionCell:
    count: int
    share: float  # of the row's (actual class's) rows
    opacity: float  # of the cell's background


def confusion_rows(confusion: dict[str, Any]) -> tuple[list[str], list[tuple[str, list]]]:
    """Labels, and per actual class its cells shaded by share of that class."""
    labels = [short_label(label) for label in confusion.get("labels") or []]
    rows = []
    for label, counts in zip(labels, confusion.get("matrix") or [], strict=False):
        total = sum(int(count) for count in counts) or 1
        cells = [
            ConfusionCell(
                count=int(count),
                share=round(int(count) / total, 4),
                opacity=round(CONFUSION_MAX_OPACITY * int(count) / total, 2),
            )
            for count in counts
        ]
        rows.append((label, cells))
    return labels, rows
