from __future__ import annotations

from mlmanager.machines.charts import (
    IMPORTANCE_VALUE_WIDTH,
    SCATTER_MAX_POINTS,
    confusion_rows,
    importance_chart,
    scatter_chart,
)


def test_importance_largest_first_negative_drawn_empty() -> None:
    chart = importance_chart(
        [
            {"feature": "a", "importance": 0.1, "std": 0.01},
            {"feature": "b", "importance": 0.4, "std": None},
            {"feature": "c", "importance": -0.02, "std": 0.03},
        ]
    )
    assert chart is not None
    assert [bar.label for bar in chart.bars] == ["b", "a", "c"]
    assert chart.bars[0].width == chart.width - chart.label_width - IMPORTANCE_VALUE_WIDTH
    assert chart.bars[1].width == chart.bars[0].width / 4
    assert (chart.bars[2].width, chart.bars[2].value) == (0.0, "-0.02")
    # The value axis: round ticks from 0 to the largest bar's end.
    assert [tick.value for tick in chart.ticks] == [0.0, 0.1, 0.2, 0.3, 0.4]
    assert chart.ticks[-1].position == chart.label_width + chart.bars[0].width
    assert [bar.y for bar in chart.bars] == [0, 18, 36]
    assert chart.height == 54
    assert importance_chart([]) is None


def test_scatter_shares_one_scale_and_thins_points() -> None:
    chart = scatter_chart([0.0, 10.0], [10.0, 0.0])
    assert chart is not None
    assert chart.points == [(8.0, 8.0), (272.0, 272.0)]
    assert chart.diagonal == (8.0, 272.0, 272.0, 8.0)
    assert (chart.low_label, chart.high_label) == ("0", "10")
    many = scatter_chart(list(range(5000)), [None, *range(1, 5000)])
    assert many is not None and len(many.points) == SCATTER_MAX_POINTS
    assert scatter_chart([None], [1.0]) is None


def test_confusion_rows_shade_by_actual_class() -> None:
    labels, rows = confusion_rows({"labels": [False, True], "matrix": [[3, 1], [0, 0]]})
    assert labels == ["False", "True"]
    assert [(cell.count, cell.share, cell.opacity) for cell in rows[0][1]] == [
        (3, 0.75, 0.41),
        (1, 0.25, 0.14),
    ]
    assert [cell.share for cell in rows[1][1]] == [0.0, 0.0]
