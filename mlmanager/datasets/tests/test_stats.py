"""A column's statistics list up to 10 of its values, then how many more there are; its
category chart names each bar."""

from __future__ import annotations

from typing import Any

from django.template.loader import render_to_string

from mlmanager.datasets.charts import column_chart


def categorical(values: int, unique: int) -> dict[str, Any]:
    top = [{"value": f"city-{index}", "count": 100 - index} for index in range(values)]
    return {
        "name": "city",
        "type": "categorical",
        "unique_count": unique,
        "stats": {"top_values": top, "other_count": 5},
    }


def stats_of(column: dict[str, Any]) -> str:
    return render_to_string(
        "datasets/partials/_stats.html", {"column": column, "stats": column["stats"]}
    )


def test_ten_values_then_how_many_more() -> None:
    text = stats_of(categorical(10, unique=25))
    assert all(f"city-{index} (" in text for index in range(10))
    assert '<span class="muted" data-testid="more-values">15 more</span>' in text


def test_no_more_when_every_value_is_listed() -> None:
    text = stats_of(categorical(4, unique=4))
    assert "city-3 (97)" in text and "more" not in text


def test_category_chart_names_its_bars_and_counts() -> None:
    column = categorical(3, unique=3)
    chart = column_chart(column)
    svg = render_to_string("datasets/partials/_chart.html", {"column": column, "chart": chart})
    assert 'data-testid="category-chart"' in svg
    assert svg.count("<rect ") == 3
    assert '<text x="0" y="7.0">city-0</text>' in svg
    assert ">100</text>" in svg and ">98</text>" in svg  # the counts after the bars
