from __future__ import annotations

from mlmanager.datasets.charts import (
    COUNT_WIDTH,
    HEIGHT,
    LABEL_WIDTH,
    ROW_HEIGHT,
    WIDTH,
    column_chart,
)


def test_histogram_bars_scale_to_the_tallest_and_labels_are_short() -> None:
    chart = column_chart(
        {
            "type": "numeric",
            "stats": {"histogram": {"edges": [13.690000000000001, 50.0, 84.41], "counts": [10, 5]}},
        }
    )
    assert chart is not None
    assert chart.kind == "histogram"
    assert [bar.height for bar in chart.bars] == [HEIGHT, HEIGHT / 2]
    assert (chart.first_label, chart.last_label) == ("13.69", "84.41")
    assert chart.bars[0].label == "13.69 – 50"


def test_dates_drop_midnight_and_top_values_become_bars() -> None:
    dates = column_chart(
        {
            "type": "datetime",
            "stats": {
                "histogram": {
                    "edges": ["2022-01-01T00:00:00", "2023-01-01T00:00:00"],
                    "counts": [3],
                }
            },
        }
    )
    assert dates is not None and dates.first_label == "2022-01-01"
    bars = column_chart(
        {
            "type": "categorical",
            "stats": {"top_values": [{"value": "a", "count": 4}, {"value": "b", "count": 0}]},
        }
    )
    assert bars is not None and bars.kind == "categories"
    room = WIDTH - LABEL_WIDTH - COUNT_WIDTH
    assert [bar.width for bar in bars.bars] == [room, 0]


def test_category_bars_are_named_rows_with_their_counts_after_them() -> None:
    chart = column_chart(
        {
            "type": "categorical",
            "stats": {
                "top_values": [
                    {"value": "standard", "count": 500},
                    {"value": "a rather long plan name", "count": 250},
                ]
            },
        }
    )
    assert chart is not None
    first, second = chart.bars
    assert (first.name, second.name) == ("standard", "a rather long…")
    assert second.label == "a rather long plan name"  # the whole name in the tooltip
    assert first.x == second.x == LABEL_WIDTH  # bars start after the names
    assert second.width == first.width / 2
    assert second.count_x == LABEL_WIDTH + second.width + 3
    assert (first.text_y, second.text_y) == (ROW_HEIGHT / 2, ROW_HEIGHT * 1.5)
    assert chart.height == 2 * ROW_HEIGHT


def test_no_chart_for_identifiers_or_constants() -> None:
    top = {"top_values": [{"value": "x", "count": 1}]}
    assert column_chart({"type": "identifier", "stats": top}) is None
    assert column_chart({"type": "constant", "stats": top}) is None
