"""Charts of a model version, drawn as inline SVG by the templates from server-side geometry.

The same approach as mlmanager.datasets.charts (and its label shortening): no JavaScript and
no chart library, just rectangles, lines and circles placed here. Colours and fonts come from
CSS classes in core/static/core/app.css (the Content-Security-Policy forbids style attributes);
tick values stay numbers, formatted in the template with the user's preferences.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _

from mlmanager.datasets.charts import short_label
from mlmanager.engine.training.spec import higher_is_better

IMPORTANCE_WIDTH = 420
IMPORTANCE_LABEL_WIDTH = 150
# Room right of the longest bar for its value.
IMPORTANCE_VALUE_WIDTH = 56
IMPORTANCE_ROW = 18
IMPORTANCE_MAX_FEATURES = 20
# Height of the value axis under horizontal bars.
BAR_AXIS_HEIGHT = 22
SCATTER_SIZE = 280
SCATTER_MARGIN = 8
SCATTER_MAX_POINTS = 1000


@dataclass(frozen=True)
class Tick:
    position: float  # pixels along the axis
    value: float


@dataclass(frozen=True)
class ImportanceBar:
    y: float
    width: float
    label: str
    value: str
    std: str
    amount: float | None = None  # the number, for the label right of the bar
    spread: float | None = None  # its standard deviation, when measured
    # Shown instead of `label` when the bar is a range of numbers (error by range), so the
    # template formats them with the user's preferences.
    span: tuple[float | None, float | None] | None = None


@dataclass(frozen=True)
class ImportanceChart:
    """Horizontal bars (importance, error by range, best score by model family) with their
    values written at their ends and a value axis underneath."""

    bars: list[ImportanceBar]
    width: int
    height: int  # of the bars; the axis adds BAR_AXIS_HEIGHT below
    label_width: int = IMPORTANCE_LABEL_WIDTH
    row_height: int = IMPORTANCE_ROW
    ticks: tuple[Tick, ...] = ()

    @property
    def total_height(self) -> int:
        return self.height + BAR_AXIS_HEIGHT


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
    return bar_chart([(name, value, _number(std)) for name, value, std in rows])


def bar_chart(
    rows: Sequence[tuple[str, float, float | None]],
    spans: Sequence[tuple[float | None, float | None]] | None = None,
) -> ImportanceChart:
    """Horizontal bars from zero for (label, value, spread or None), in the given order; a
    negative value is drawn as no bar, its value still written. `spans`, one per row, label
    the bars with ranges of numbers instead."""
    peak = max((value for _name, value, _std in rows), default=0.0)
    scale_top = nice_ticks(0.0, peak)[-1] if peak > 0 else 1.0
    span = IMPORTANCE_WIDTH - IMPORTANCE_LABEL_WIDTH - IMPORTANCE_VALUE_WIDTH
    bars = [
        ImportanceBar(
            y=index * IMPORTANCE_ROW,
            width=round(max(0.0, value) / scale_top * span, 2),
            label=short_label(name),
            value=short_label(value),
            std=short_label(std) if std is not None else "",
            amount=value,
            spread=std,
            span=spans[index] if spans else None,
        )
        for index, (name, value, std) in enumerate(rows)
    ]
    ticks = tuple(
        Tick(position=round(IMPORTANCE_LABEL_WIDTH + value / scale_top * span, 1), value=value)
        for value in nice_ticks(0.0, scale_top)
    )
    return ImportanceChart(
        bars=bars, width=IMPORTANCE_WIDTH, height=len(bars) * IMPORTANCE_ROW, ticks=ticks
    )


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About `count` round tick values (steps of 1, 2 or 5 × 10^k) covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low] if math.isfinite(low) else [0.0]
    raw_step = (high - low) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw_step))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw_step)
    first = math.floor(low / step + 1e-9) * step
    ticks = []
    value = first
    while value < high + step * 0.999:
        ticks.append(round(value, 12))
        value = first + len(ticks) * step
    return ticks


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


# --- curves and residuals: one x-y chart shape ---------------------------------------------------

XY_WIDTH = 300
XY_HEIGHT = 240
XY_LEFT = 44  # room for the y tick labels
XY_BOTTOM = 34  # room for the x tick labels and the axis title
XY_TOP = 8
XY_RIGHT = 10
XY_MAX_POINTS = 500


@dataclass(frozen=True)
class Series:
    """One thing drawn: a polyline ("line"), dots ("dots"), or a dashed reference line
    ("reference"); `css` is its class in app.css."""

    kind: str
    css: str
    points: tuple[tuple[float, float], ...]

    @property
    def polyline(self) -> str:
        return " ".join(f"{x},{y}" for x, y in self.points)


@dataclass(frozen=True)
class XYChart:
    series: tuple[Series, ...]
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    x_title: str
    y_title: str
    width: int = XY_WIDTH
    height: int = XY_HEIGHT
    left: int = XY_LEFT
    top: int = XY_TOP
    # The point to mark (precision and recall at the decision threshold), if any.
    marker: tuple[float, float] | None = None

    @property
    def bottom(self) -> int:
        return self.height - XY_BOTTOM

    @property
    def right(self) -> int:
        return self.width - XY_RIGHT

    @property
    def x_title_y(self) -> int:
        return self.height - 4

    @property
    def y_title_x(self) -> int:
        return 11


class _Frame:
    """Maps data to pixels within the chart's plotting area."""

    def __init__(self, x_range: tuple[float, float], y_range: tuple[float, float]):
        self.x_low, self.x_high = x_range
        self.y_low, self.y_high = y_range

    def x(self, value: float) -> float:
        span = (self.x_high - self.x_low) or 1.0
        return round(XY_LEFT + (value - self.x_low) / span * (XY_WIDTH - XY_RIGHT - XY_LEFT), 1)

    def y(self, value: float) -> float:
        span = (self.y_high - self.y_low) or 1.0
        bottom = XY_HEIGHT - XY_BOTTOM
        return round(bottom - (value - self.y_low) / span * (bottom - XY_TOP), 1)

    def point(self, x: float, y: float) -> tuple[float, float]:
        return (self.x(x), self.y(y))

    def series(self, kind: str, css: str, pairs: list[tuple[float, float]]) -> Series:
        return Series(kind=kind, css=css, points=tuple(self.point(x, y) for x, y in pairs))

    def ticks(self, x_values: list[float], y_values: list[float]) -> dict[str, Any]:
        return {
            "x_ticks": tuple(Tick(self.x(value), value) for value in x_values),
            "y_ticks": tuple(Tick(self.y(value), value) for value in y_values),
        }


_UNIT_TICKS = [0.0, 0.25, 0.5, 0.75, 1.0]
_UNIT = _Frame((0.0, 1.0), (0.0, 1.0))


def _pairs(xs: Any, ys: Any) -> list[tuple[float, float]]:
    pairs = []
    for x, y in zip(xs or [], ys or [], strict=False):
        x_number, y_number = _number(x), _number(y)
        if x_number is not None and y_number is not None:
            pairs.append((x_number, y_number))
    return pairs


def roc_chart(curve: dict[str, Any] | None) -> XYChart | None:
    """True positive rate against false positive rate; the diagonal is the baseline
    (AUC 0.5)."""
    pairs = _pairs((curve or {}).get("fpr"), (curve or {}).get("tpr"))
    if len(pairs) < 2:
        return None
    return XYChart(
        series=(
            _UNIT.series("reference", "chart-reference", [(0.0, 0.0), (1.0, 1.0)]),
            _UNIT.series("line", "chart-line", pairs),
        ),
        x_title=_("false positive rate"),
        y_title=_("true positive rate"),
        **_UNIT.ticks(_UNIT_TICKS, _UNIT_TICKS),
    )


def precision_recall_chart(
    curve: dict[str, Any] | None,
    *,
    positive_share: float | None = None,
    at_threshold: dict[str, float] | None = None,
) -> XYChart | None:
    """Precision against recall; the horizontal line at the positives' share is what a model
    that ranks at random reaches; `at_threshold` (from `at_threshold`) is marked."""
    pairs = _pairs((curve or {}).get("recall"), (curve or {}).get("precision"))
    if len(pairs) < 2:
        return None
    series = []
    if positive_share is not None:
        series.append(
            _UNIT.series(
                "reference", "chart-reference", [(0.0, positive_share), (1.0, positive_share)]
            )
        )
    series.append(_UNIT.series("line", "chart-line", sorted(pairs)))
    marker = (
        _UNIT.point(at_threshold["recall"], at_threshold["precision"]) if at_threshold else None
    )
    return XYChart(
        series=tuple(series),
        x_title=_("recall"),
        y_title=_("precision"),
        marker=marker,
        **_UNIT.ticks(_UNIT_TICKS, _UNIT_TICKS),
    )


def calibration_chart(calibration: dict[str, Any] | None) -> XYChart | None:
    """Reliability diagram: per bin of predicted probability, the share that was positive;
    on the diagonal the probabilities mean what they say."""
    pairs = _pairs((calibration or {}).get("predicted"), (calibration or {}).get("observed"))
    if not pairs:
        return None
    return XYChart(
        series=(
            _UNIT.series("reference", "chart-reference", [(0.0, 0.0), (1.0, 1.0)]),
            _UNIT.series("line", "chart-line", pairs),
            _UNIT.series("dots", "chart-dot", pairs),
        ),
        x_title=_("predicted probability"),
        y_title=_("observed share"),
        **_UNIT.ticks(_UNIT_TICKS, _UNIT_TICKS),
    )


def residual_chart(actual: Any, predicted: Any) -> XYChart | None:
    """Residuals (actual minus predicted) against the prediction, around a zero line: a
    pattern (a funnel, a slope) shows where the model is systematically off."""
    pairs = [(p, a - p) for a, p in _pairs(actual, predicted)]
    if not pairs:
        return None
    if len(pairs) > XY_MAX_POINTS:
        step = len(pairs) / XY_MAX_POINTS
        pairs = [pairs[int(index * step)] for index in range(XY_MAX_POINTS)]
    x_ticks = nice_ticks(min(x for x, _ in pairs), max(x for x, _ in pairs))
    reach = max(abs(y) for _, y in pairs) or 1.0
    y_ticks = nice_ticks(-reach, reach)
    frame = _Frame((x_ticks[0], x_ticks[-1]), (y_ticks[0], y_ticks[-1]))
    return XYChart(
        series=(
            frame.series("reference", "chart-reference", [(x_ticks[0], 0.0), (x_ticks[-1], 0.0)]),
            frame.series("dots", "chart-dot", pairs),
        ),
        x_title=_("predicted"),
        y_title=_("actual − predicted"),
        **frame.ticks(x_ticks, y_ticks),
    )


def error_by_range_chart(ranges: list[dict[str, Any]] | None) -> ImportanceChart | None:
    """Mean absolute error per range of the actual value (bins of about equal row counts)."""
    items = ranges or []
    if not items:
        return None
    rows = [("", _number(item.get("mae")) or 0.0, None) for item in items]
    spans = [(_number(item.get("low")), _number(item.get("high"))) for item in items]
    return bar_chart(rows, spans)


def family_chart(
    leaderboard: list[dict[str, Any]] | None, *, higher_is_better: bool
) -> ImportanceChart | None:
    """The best score each model family (lgbm, rf, …) reached in the search, best first, in
    the metric's own units (shorter bars are better for errors and losses)."""
    best: dict[str, float] = {}
    pick = max if higher_is_better else min
    for entry in leaderboard or []:
        score = _number(entry.get("score"))
        if score is None:
            continue
        family = str(entry.get("estimator") or "?")
        best[family] = pick(best[family], score) if family in best else score
    if not best:
        return None
    rows = sorted(best.items(), key=lambda item: item[1], reverse=higher_is_better)
    return bar_chart([(family, score, None) for family, score in rows])


def at_threshold(curve: dict[str, Any] | None, threshold: float) -> dict[str, float] | None:
    """Precision and recall when the positive class is predicted from `threshold` up: the
    stored point of the smallest score threshold at or above it (exact for two-decimal
    thresholds, see engine.training.metrics.classification_curves)."""
    curve = curve or {}
    points = [
        (t, p, r)
        for t, p, r in zip(
            (_number(v) for v in curve.get("thresholds") or []),
            (_number(v) for v in curve.get("precision") or []),
            (_number(v) for v in curve.get("recall") or []),
            strict=False,
        )
        if t is not None and p is not None and r is not None and t >= threshold
    ]
    if not points:
        return None
    _t, precision, recall = min(points)
    return {"precision": precision, "recall": recall}


# --- what the model page shows for one output of a version -----------------------------------


@dataclass(frozen=True)
class MetricRow:
    name: str
    value: float | None
    baseline: float | None
    # None when there is no baseline to compare with (versions recorded before baselines).
    beats_baseline: bool | None


def metric_rows(output: dict[str, Any]) -> list[MetricRow]:
    """The scalar holdout metrics, each beside its baseline's value when the version has one."""
    metrics = output.get("metrics") or {}
    baseline = output.get("baseline") or {}
    rows = []
    for name, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or name == "holdout_rows":
            continue
        reference = _number(baseline.get(name))
        number = _number(value)
        beats = None
        if reference is not None and number is not None:
            beats = number > reference if higher_is_better(name) else number < reference
        rows.append(MetricRow(name=name, value=number, baseline=reference, beats_baseline=beats))
    return rows


def output_display(output: dict[str, Any], *, threshold: float | None) -> dict[str, Any]:
    """Everything the model page draws for one output beyond the confusion matrix and the
    scatter: metrics beside their baseline, curves, residuals, error by range, the best score
    per model family, and for two classes the precision and recall at the decision threshold
    (0.5, the more probable class, when none is set)."""
    metrics = output.get("metrics") or {}
    rows = metric_rows(output)
    task = output.get("task")
    shown: dict[str, Any] = {
        "metric_rows": rows,
        "has_baseline": any(row.baseline is not None for row in rows),
        "below_baseline": [row for row in rows if row.beats_baseline is False],
        "families": family_chart(
            output.get("leaderboard"), higher_is_better=higher_is_better(str(output.get("metric")))
        ),
        "roc": roc_chart(metrics.get("roc_curve")),
        "calibration": calibration_chart(metrics.get("calibration")),
        "residuals": None,
        "error_by_range": error_by_range_chart(metrics.get("error_by_range")),
        "is_binary": task == "binary",
        "threshold": threshold,
        "at_threshold": None,
        "positive_class": None,
    }
    if task == "regression":
        spread = metrics.get("predicted_vs_actual") or {}
        shown["residuals"] = residual_chart(spread.get("actual"), spread.get("predicted"))
    curve = metrics.get("precision_recall_curve")
    point = None
    if task == "binary":
        point = at_threshold(curve, 0.5 if threshold is None else threshold)
        shown["at_threshold"] = point
        labels = (metrics.get("confusion_matrix") or {}).get("labels") or []
        shown["positive_class"] = short_label(labels[1]) if len(labels) == 2 else None
    shown["precision_recall"] = precision_recall_chart(
        curve, positive_share=_positive_share(metrics, task), at_threshold=point
    )
    return shown


def _positive_share(metrics: dict[str, Any], task: Any) -> float | None:
    """The holdout's share of the positive class (from the confusion matrix's rows)."""
    matrix = (metrics.get("confusion_matrix") or {}).get("matrix") or []
    if task != "binary" or len(matrix) != 2:
        return None
    totals = [sum(int(count) for count in row) for row in matrix]
    return totals[1] / sum(totals) if sum(totals) else None


# --- a training run: the best search score over time (issue 12, item 7) -----------------------


def best_score_chart(
    points: list[Any] | None, *, metric: str, score_title: str, until_s: float | None = None
) -> XYChart | None:
    """The best search score of one output against seconds since the run started, as steps
    (the best stays flat until a candidate beats it), with dots where it improved. `points`
    are TrainingRun.score_curve's `[seconds, score]`; `until_s` extends the last step to now."""
    pairs = [
        (x, y)
        for point in points or []
        if isinstance(point, list | tuple) and len(point) == 2
        for x, y in _pairs([point[0]], [point[1]])
    ]
    if not pairs:
        return None
    end = max(pairs[-1][0], _number(until_s) or 0.0)
    steps = [pairs[0]]
    for index in range(1, len(pairs)):
        x, y = pairs[index]
        steps += [(x, pairs[index - 1][1]), (x, y)]
    steps.append((end, pairs[-1][1]))
    x_ticks = nice_ticks(0.0, end or 1.0)
    scores = [y for _, y in pairs]
    y_ticks = nice_ticks(min(scores), max(scores))
    frame = _Frame((x_ticks[0], x_ticks[-1]), (y_ticks[0], y_ticks[-1]))
    return XYChart(
        series=(
            frame.series("line", "chart-line", steps),
            frame.series("dots", "chart-dot", pairs),
        ),
        x_title=_("seconds"),
        y_title=score_title
        if higher_is_better(metric)
        else _("%(title)s (lower is better)") % {"title": score_title},
        **frame.ticks(x_ticks, y_ticks),
    )


# --- an image model's training: per-epoch curves of each member (issue 16) ----------------------


def epoch_chart(points: list[Any] | None, *, key: str, title: str) -> XYChart | None:
    """One quantity of a member against its epochs: training as a dashed line, validation as a
    solid line with dots, and the best validation epoch marked when `key` is the metric.
    `points` are the engine's `{"epoch", "train_<key>", "val_<key>"}`."""
    rows = [point for point in points or [] if isinstance(point, dict)]
    train = _pairs([row.get("epoch") for row in rows], [row.get(f"train_{key}") for row in rows])
    validation = _pairs([row.get("epoch") for row in rows], [row.get(f"val_{key}") for row in rows])
    if not train and not validation:
        return None
    epochs = [x for x, _y in train + validation]
    values = [y for _x, y in train + validation]
    last_epoch = max(max(epochs), 1.0)
    # Whole epochs only; the frame reaches the last epoch even when no whole tick does.
    x_ticks = [tick for tick in nice_ticks(0.0, last_epoch) if tick == int(tick)]
    low, high = min(values), max(values)
    if key == "metric":  # accuracy and Dice live in [0, 1]: a fixed scale compares runs
        low, high = min(0.0, low), max(1.0, high)
    y_ticks = nice_ticks(low, high if high > low else low + 1.0)
    frame = _Frame((0.0, max(x_ticks[-1], last_epoch)), (y_ticks[0], y_ticks[-1]))
    series = []
    if train:
        series.append(frame.series("reference", "chart-reference", train))
    if validation:
        series.append(frame.series("line", "chart-line", validation))
        series.append(frame.series("dots", "chart-dot", validation))
    marker = None
    if key == "metric" and validation:
        best = max(validation, key=lambda pair: pair[1])  # the first epoch at the best value
        marker = frame.point(*best)
    return XYChart(
        series=tuple(series),
        x_title=_("epoch"),
        y_title=title,
        marker=marker,
        **frame.ticks(x_ticks, y_ticks),
    )


def epoch_charts(curves: dict[str, Any] | None, *, metric: str) -> list[dict[str, Any]]:
    """Per member of an image model, its loss and metric charts (for the run while it trains,
    and for the version it made)."""
    shown = []
    for member, points in (curves or {}).items():
        loss = epoch_chart(points, key="loss", title=_("loss"))
        quality = epoch_chart(points, key="metric", title=metric)
        if loss is not None or quality is not None:
            shown.append({"member": member, "loss": loss, "metric": quality, "epochs": len(points)})
    return shown
