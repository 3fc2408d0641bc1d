"""The geometry of monitoring's time charts: lines and gaps, rule bands, alert marks, ticks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from mlmanager.monitoring import charts_svg
from mlmanager.monitoring.charts_svg import AlertSpan, SeriesInput, Threshold, time_chart

START = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
END = START + timedelta(hours=1)


def _minutes(*values: float | None) -> list[tuple[datetime, float | None]]:
    return [(START + timedelta(minutes=10 * index), value) for index, value in enumerate(values)]


def _coordinates(polyline: str) -> list[tuple[float, float]]:
    return [tuple(float(part) for part in pair.split(",")) for pair in polyline.split()]  # type: ignore[misc]


def test_each_series_is_a_coloured_line_across_the_plot() -> None:
    chart = time_chart(
        [SeriesInput("Kiln", _minutes(10, 20, 30)), SeriesInput("Dryer", _minutes(30, 20))],
        start=START,
        end=END,
    )

    kiln, dryer = chart.lines
    assert (kiln.css, kiln.label, kiln.points, kiln.last_value) == ("series-0", "Kiln", 3, 30.0)
    assert (dryer.css, dryer.points, dryer.last_value) == ("series-1", 2, 20.0)
    [segment] = kiln.segments
    coordinates = _coordinates(segment)
    assert coordinates[0][0] == chart.left
    # 20 minutes of an hour: a third of the plot's width.
    assert coordinates[2][0] == pytest.approx(chart.left + chart.plot_width / 3, abs=0.1)
    # Higher values are higher up (smaller y), inside the plot.
    ys = [y for _x, y in coordinates]
    assert chart.bottom > ys[0] > ys[1] > ys[2] > chart.top
    assert chart.points == 5


def test_a_missing_value_cuts_the_line_and_a_lone_point_is_a_dot() -> None:
    chart = time_chart(
        [SeriesInput("Flow", _minutes(1, 2, None, 3, None, 4, 5))], start=START, end=END
    )

    [line] = chart.lines
    assert len(line.segments) == 2
    assert [len(_coordinates(segment)) for segment in line.segments] == [2, 2]
    assert len(line.dots) == 1
    assert line.dots[0][0] == pytest.approx(chart.left + chart.plot_width / 2, abs=0.1)
    assert line.points == 5


def test_points_outside_the_range_are_left_out() -> None:
    points = [(START - timedelta(minutes=5), 100.0), *_minutes(1, 2)]

    [line] = time_chart([SeriesInput("A", points)], start=START, end=END).lines

    assert line.points == 2
    assert max(y for y in [float(v) for v in (line.last_value,)]) == 2.0


def test_an_above_rule_shades_from_its_value_to_the_top() -> None:
    chart = time_chart(
        [SeriesInput("Kiln", _minutes(10, 20))],
        start=START,
        end=END,
        thresholds=[Threshold(op="above", value=80.0, severity="critical")],
    )

    [band] = chart.bands
    [limit] = chart.limits
    assert band.css == "band-critical"
    assert band.y == chart.top
    assert band.y + band.height == pytest.approx(limit.y, abs=0.11)
    assert limit.css == "limit-critical"
    # The axis reaches the threshold though no value does.
    assert float(chart.y_ticks[-1].label) >= 80.0


def test_outside_shades_both_ends_and_inside_the_middle() -> None:
    outside = time_chart(
        [SeriesInput("A", _minutes(50))],
        start=START,
        end=END,
        thresholds=[Threshold(op="outside", low=20.0, high=80.0, severity="warning")],
    )
    inside = time_chart(
        [SeriesInput("A", _minutes(50))],
        start=START,
        end=END,
        thresholds=[Threshold(op="inside", low=20.0, high=80.0, severity="info")],
    )

    upper, lower = outside.bands
    assert upper.y == outside.top
    assert lower.y + lower.height == pytest.approx(outside.bottom, abs=0.11)
    assert {band.css for band in outside.bands} == {"band-warning"}
    [middle] = inside.bands
    assert middle.css == "band-info"
    assert inside.top < middle.y < middle.y + middle.height < inside.bottom
    assert len(inside.limits) == 2


def test_alert_marks_run_from_start_to_resolution_or_the_end() -> None:
    resolved = AlertSpan(
        1, "critical", "Kiln hot", START + timedelta(minutes=15), END - timedelta(minutes=15)
    )
    still_open = AlertSpan(2, "warning", "Dryer", START + timedelta(minutes=45))
    long_ago = AlertSpan(3, "info", "Old", START - timedelta(days=2), START - timedelta(days=1))

    chart = time_chart(
        [SeriesInput("A", _minutes(1, 2))],
        start=START,
        end=END,
        alerts=[still_open, resolved, long_ago],
    )

    first, second = chart.alerts
    assert (first.alert_id, first.css, first.open) == (1, "alert-critical", False)
    assert first.x == pytest.approx(chart.left + chart.plot_width / 4, abs=0.1)
    assert first.width == pytest.approx(chart.plot_width / 2, abs=0.2)
    assert (second.alert_id, second.css, second.open) == (2, "alert-warning", True)
    assert second.x + second.width == pytest.approx(chart.right, abs=0.1)


def test_a_short_alert_is_still_visible() -> None:
    blip = AlertSpan(
        1,
        "emergency",
        "Stop",
        START + timedelta(minutes=30),
        START + timedelta(minutes=30, seconds=1),
    )

    [mark] = time_chart([], start=START, end=END, alerts=[blip]).alerts

    assert mark.width == charts_svg.ALERT_MARK_MIN_WIDTH


def test_time_ticks_fall_on_round_times(settings: object) -> None:
    with timezone.override("UTC"):
        chart = time_chart([], start=START + timedelta(minutes=7), end=END + timedelta(minutes=7))
        day = time_chart([], start=START, end=START + timedelta(days=7))

    assert [tick.label for tick in chart.x_ticks] == [
        "10:10", "10:20", "10:30", "10:40", "10:50", "11:00",
    ]  # fmt: skip
    assert [tick.label for tick in day.x_ticks] == [
        "04 Mar", "05 Mar", "06 Mar", "07 Mar", "08 Mar", "09 Mar", "10 Mar",
    ]  # fmt: skip
    assert all(chart.left <= tick.position <= chart.right for tick in chart.x_ticks)


def test_time_ticks_follow_the_local_time_zone() -> None:
    with timezone.override("Asia/Kolkata"):  # UTC+5:30: round local hours are :30 in UTC
        chart = time_chart([], start=START, end=START + timedelta(hours=12))

    assert chart.x_ticks[0].label == "16:00"
    assert len(chart.x_ticks) <= charts_svg.MAX_TIME_TICKS


def test_zoom_slices_cover_the_range() -> None:
    chart = time_chart([], start=START, end=END)

    assert len(chart.slices) == charts_svg.ZOOM_SLICES
    assert chart.slices[0].start == "2025-03-03T10:00:00Z"
    assert chart.slices[0].end == "2025-03-03T10:10:00Z"
    assert chart.slices[-1].end == "2025-03-03T11:00:00Z"
    assert sum(item.width for item in chart.slices) == pytest.approx(chart.plot_width, abs=0.5)


def test_an_empty_chart_has_an_axis() -> None:
    chart = time_chart([SeriesInput("A", [])], start=START, end=END)

    assert chart.points == 0
    assert chart.lines[0].segments == []
    assert chart.y_ticks


def test_a_histogram_puts_both_shares_of_each_bin_side_by_side() -> None:
    drawn = charts_svg.histogram(["a", "b", "c"], [0.5, 0.25, 0.25], [0.1, 0.1, 0.8])

    assert drawn is not None
    assert [item.label for item in drawn.bins] == ["a", "b", "c"]
    first = drawn.bins[0]
    assert first.expected.x + first.expected.width == pytest.approx(first.actual.x, abs=0.2)
    # Heights follow the shares: 0.8 is the tallest, 0.1 an eighth of it.
    tallest = drawn.bins[2].actual.height
    assert drawn.bins[0].actual.height == pytest.approx(tallest / 8, abs=0.2)
    assert drawn.bins[2].actual.y + tallest == pytest.approx(drawn.bottom, abs=0.1)
    assert drawn.y_ticks[0].label == "0%"


def test_no_bins_no_histogram() -> None:
    assert charts_svg.histogram([], [], []) is None


def test_values_that_are_never_negative_keep_the_axis_at_zero() -> None:
    counts = time_chart([SeriesInput("Volume", _minutes(0, 3, 3))], start=START, end=END)
    temperatures = time_chart([SeriesInput("Cold", _minutes(-5, 3))], start=START, end=END)

    assert counts.y_ticks[0].label == "0"
    assert float(temperatures.y_ticks[0].label) < -5
