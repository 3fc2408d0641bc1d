"""The run's curve of the best search score over time (machines.charts.best_score_chart)."""

from __future__ import annotations

from mlmanager.machines.charts import best_score_chart


def test_best_score_is_drawn_as_steps_up_to_now() -> None:
    chart = best_score_chart(
        [[1.0, 0.6], [4.0, 0.7], [9.0, 0.75]],
        metric="roc_auc",
        score_title="cross-validated roc_auc",
        until_s=12.0,
    )
    assert chart is not None
    line, dots = chart.series
    assert (line.kind, dots.kind) == ("line", "dots")
    assert len(dots.points) == 3
    # A step: flat at the old best until the new best, then up; then flat until now.
    assert len(line.points) == 1 + 2 * 2 + 1
    assert line.points[1][1] == line.points[0][1]  # flat before the improvement
    assert line.points[1][0] == line.points[2][0]  # straight up at it
    assert line.points[-1][0] > dots.points[-1][0]  # extended to now (12 s)
    assert chart.x_ticks[0].value == 0.0
    assert chart.y_title == "cross-validated roc_auc"


def test_a_loss_says_lower_is_better_and_bad_points_are_skipped() -> None:
    chart = best_score_chart(
        [[0.5, 3.2], ["x", 2.0], [2.0, None], [3.0, 2.05]],
        metric="rmse",
        score_title="validation rmse",
    )
    assert chart is not None
    assert len(chart.series[1].points) == 2
    assert chart.y_title == "validation rmse (lower is better)"


def test_no_points_no_chart() -> None:
    assert best_score_chart([], metric="rmse", score_title="rmse") is None
    assert best_score_chart(None, metric="rmse", score_title="rmse") is None
