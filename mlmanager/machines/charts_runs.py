"""Runs compared in one chart: each run's best search score over time, overlaid.

Drawn like the run page's chart (machines.charts.best_score_chart: steps, dots where the best
improved, an XYChart the `_xy_chart.html` partial draws), on one frame shared by every run, each
run in its own colour (`chart-run-<n>` classes in machines/static/machines/runs.css; no style
attributes under the Content-Security-Policy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _

from mlmanager.engine.training.spec import higher_is_better
from mlmanager.machines.charts import XYChart, _Frame, _pairs, nice_ticks

# runs.css has this many colours (and a comparison takes at most as many runs).
RUN_COLOURS = 10


@dataclass(frozen=True)
class LegendItem:
    run_id: int
    css: str


def run_css(index: int) -> str:
    """The colour class of the `index`-th run compared."""
    return f"chart-run-{index % RUN_COLOURS}"


def _points(points: Any) -> list[tuple[float, float]]:
    return [
        pair
        for point in points or []
        if isinstance(point, list | tuple) and len(point) == 2
        for pair in _pairs([point[0]], [point[1]])
    ]


def _steps(pairs: list[tuple[float, float]], end: float) -> list[tuple[float, float]]:
    """Flat at the old best until a candidate beats it, then up (best_score_chart's shape)."""
    steps = [pairs[0]]
    for index in range(1, len(pairs)):
        x, y = pairs[index]
        steps += [(x, pairs[index - 1][1]), (x, y)]
    steps.append((end, pairs[-1][1]))
    return steps


def overlaid_score_chart(
    series: list[dict[str, Any]], *, run_ids: list[int], metric: str, score_title: str
) -> tuple[XYChart | None, list[LegendItem]]:
    """One output's curves of several runs (`series`: `{"run", "until_s", "points"}` as
    selectors_runs.compare_runs gives them), each run coloured by its place in `run_ids`.
    Each run's last step reaches the end of its own search; None when no run has a point."""
    drawn = []
    for item in series:
        pairs = _points(item.get("points"))
        if pairs:
            until = item.get("until_s")
            ends = max(pairs[-1][0], until if isinstance(until, int | float) else 0.0)
            drawn.append((item["run"], pairs, float(ends)))
    if not drawn:
        return None, []
    end = max(ends for _run, _pairs, ends in drawn)
    x_ticks = nice_ticks(0.0, end or 1.0)
    scores = [y for _run, pairs, _end in drawn for _x, y in pairs]
    y_ticks = nice_ticks(min(scores), max(scores))
    frame = _Frame((x_ticks[0], x_ticks[-1]), (y_ticks[0], y_ticks[-1]))
    lines = []
    legend: list[LegendItem] = []
    for run_id, pairs, run_end in drawn:
        css = run_css(run_ids.index(run_id) if run_id in run_ids else len(legend))
        lines.append(frame.series("line", css, _steps(pairs, run_end)))
        lines.append(frame.series("dots", f"{css} chart-run-dot", pairs))
        legend.append(LegendItem(run_id=run_id, css=css))
    chart = XYChart(
        series=tuple(lines),
        x_title=_("seconds"),
        y_title=score_title
        if higher_is_better(metric)
        else _("%(title)s (lower is better)") % {"title": score_title},
        **frame.ticks(x_ticks, y_ticks),
    )
    return chart, legend
