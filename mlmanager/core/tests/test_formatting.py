from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django.utils import timezone

from mlmanager.core.formatting import (
    Preferences,
    format_cell,
    format_date,
    format_datetime,
    format_duration,
    format_filesize,
    format_log,
    format_number,
    format_percent,
    format_significant,
    localize_text,
    nice_ticks,
    override,
    tick_labels,
)


@pytest.mark.parametrize(
    ("order", "separator", "expected"),
    [("YMD", "-", "2026-03-09"), ("DMY", ".", "09.03.2026"), ("MDY", "/", "03/09/2026")],
)
def test_date_order_and_separator(order: str, separator: str, expected: str) -> None:
    assert format_date(date(2026, 3, 9), date_order=order, date_separator=separator) == expected


def test_datetime_in_active_time_zone_and_12_hour_clock() -> None:
    moment = datetime(2026, 3, 9, 16, 5, tzinfo=UTC)
    with timezone.override("America/New_York"):
        assert format_datetime(moment, time_format="12", date_order="MDY", date_separator="/") == (
            "03/09/2026 12:05 PM"
        )
    with timezone.override("Europe/Berlin"):
        assert format_datetime(moment) == "2026-03-09 17:05"


@pytest.mark.parametrize(
    ("value", "decimals", "separator", "expected"),
    [
        (1234567, None, ".", "1,234,567"),
        (1234567.891, 2, ".", "1,234,567.89"),
        (1234567.891, 2, ",", "1.234.567,89"),
        (0.12345, None, ",", "0,1235"),
        (None, None, ".", "–"),
    ],
)
def test_numbers(value: object, decimals: int | None, separator: str, expected: str) -> None:
    assert format_number(value, decimals=decimals, decimal_separator=separator) == expected


def test_percent_and_cells_follow_decimal_separator() -> None:
    assert format_percent(0.0812, decimal_separator=",") == "8,1 %"
    assert format_percent(None) == "–"
    assert format_cell(1234.5678901, decimal_separator=",") == "1234,5678901"
    assert format_cell(12) == "12"
    assert format_cell("a.b", decimal_separator=",") == "a.b"


# The preferences of a reader of decimal commas, day/month/year and a 12-hour clock.
COMMA = Preferences(decimal_separator=",", date_order="DMY", date_separator="/", time_format="12")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (2.0508, "2,051"),
        (0.29999999999999993, "0,3"),
        (13.690000000000001, "13,69"),
        (123456.7, "123.457"),
        (0.000012345, "0,00001234"),
        (-0.5, "-0,5"),
        (0, "0"),
    ],
)
def test_significant_digits_without_float_noise(value: float, expected: str) -> None:
    assert format_significant(value, preferences=COMMA) == expected


def test_cells_keep_their_digits_but_lose_float_noise_and_show_dates_in_order() -> None:
    assert format_cell(0.1 + 0.2, preferences=COMMA) == "0,3"
    assert format_cell(13.690000000000001) == "13.69"
    assert format_cell(0.000012345, preferences=COMMA) == "0,000012345"
    assert format_cell(datetime(2023, 4, 5), preferences=COMMA) == "05/04/2023"
    assert format_cell(datetime(2023, 4, 5, 18, 45, 30), preferences=COMMA) == (
        "05/04/2023 6:45:30 PM"
    )
    assert format_cell("2023-04-05T00:00:00", preferences=COMMA) == "05/04/2023"


def test_the_active_preferences_apply_where_none_are_given() -> None:
    with override(COMMA):
        assert format_number(1234.5, decimals=1) == "1.234,5"
        assert format_date(date(2026, 3, 9)) == "09/03/2026"
        # Given ones still win.
        assert format_number(1234.5, decimals=1, decimal_separator=".") == "1,234.5"
    assert format_number(1234.5, decimals=1) == "1,234.5"


def test_axis_ticks_are_round_and_their_labels_share_their_decimals() -> None:
    assert nice_ticks(0, 1) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert nice_ticks(0.1, 0.7) == [0.2, 0.4, 0.6]  # no 0.6000000000000001
    assert tick_labels([0, 0.5, 1], preferences=COMMA) == ["0,0", "0,5", "1,0"]
    assert tick_labels([0, 0.25, 0.5]) == ["0.00", "0.25", "0.50"]
    assert tick_labels([0, 2000, 4000], preferences=COMMA) == ["0", "2.000", "4.000"]


def test_sizes_and_durations() -> None:
    assert format_filesize(5734, preferences=COMMA) == "5,6 KB"
    assert format_filesize(12) == "12 bytes"
    assert format_filesize(None) == "–"
    assert format_duration(0.353, preferences=COMMA) == "0,35 s"
    assert format_duration(185) == "3 min 05 s"


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        (
            "Trying models: 1,254 tried, best rmse 0.7512 (enet)",
            "Trying models: 1.254 tried, best rmse 0,7512 (enet)",
        ),
        ("best 2.5, 12 tried", "best 2,5, 12 tried"),
        (
            "v1.2.3 from 10.0.0.1 in file-1.5.csv at 17:30:05",
            "v1.2.3 from 10.0.0.1 in file-1.5.csv at 17:30:05",
        ),
    ],
)
def test_text_the_platform_wrote_follows_the_decimal_comma(written: str, shown: str) -> None:
    assert localize_text(written, preferences=COMMA) == shown


def test_a_log_is_shown_in_the_readers_zone_and_clock_across_midnight() -> None:
    log = "22:30:45 Read 1,000 rows\n23:59:59 still reading\n00:00:01 done in 0.5 s\n"
    with timezone.override("Asia/Kolkata"):  # UTC+05:30
        shown = format_log(
            log, created=datetime(2026, 12, 6, 22, 30, tzinfo=UTC), preferences=COMMA
        )
    assert shown == [
        "4:00:45 AM Read 1.000 rows",
        "5:29:59 AM still reading",
        "5:30:01 AM done in 0,5 s",
    ]


def test_a_log_line_gets_the_offset_of_its_own_day() -> None:
    """Berlin moves its clocks on 2026-03-29 at 01:00 UTC: the same log has both offsets."""
    log = "23:30:00 queued\n00:30:00 before\n01:30:00 after\n"
    with timezone.override("Europe/Berlin"):
        shown = format_log(log, created=datetime(2026, 3, 28, 23, 29, 59, tzinfo=UTC))
    assert shown == ["00:30:00 queued", "01:30:00 before", "03:30:00 after"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.0000123, "0,0000123"), (50.0, "50"), (2.5, "2,5"), (1234.5, "1.234,5"), (7, "7")],
)
def test_statistics_without_decimals_given_keep_four_significant_digits(
    value: float, expected: str
) -> None:
    assert format_number(value, preferences=COMMA) == expected
