from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django.utils import timezone

from mlmanager.core.formatting import (
    format_cell,
    format_date,
    format_datetime,
    format_number,
    format_percent,
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
