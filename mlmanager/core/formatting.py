"""Dates and numbers in each user's own format (EasyAutoML's locale preferences)."""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

from django.utils import timezone

_DATE_PATTERNS = {"DMY": ("%d", "%m", "%Y"), "MDY": ("%m", "%d", "%Y"), "YMD": ("%Y", "%m", "%d")}


def format_date(value: date, *, date_order: str = "YMD", date_separator: str = "-") -> str:
    parts = _DATE_PATTERNS.get(date_order, _DATE_PATTERNS["YMD"])
    return value.strftime(date_separator.join(parts))


def format_datetime(
    value: datetime,
    *,
    date_order: str = "YMD",
    date_separator: str = "-",
    time_format: str = "24",
) -> str:
    """Shown in the active time zone (the user's, set by the preferences middleware)."""
    if timezone.is_aware(value):
        value = timezone.localtime(value)
    time_part = (
        value.strftime("%I:%M %p").lstrip("0") if time_format == "12" else value.strftime("%H:%M")
    )
    date_part = format_date(value, date_order=date_order, date_separator=date_separator)
    return f"{date_part} {time_part}"


def format_number(value: Any, *, decimals: int | None = None, decimal_separator: str = ".") -> str:
    """Thousands grouped; the decimal comma swaps the roles of '.' and ','."""
    if value is None or value == "":
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return str(value)
    if decimals is None:
        decimals = 0 if isinstance(value, int) else _auto_decimals(float(value))
    text = (
        f"{float(value):,.{decimals}f}" if decimals or not isinstance(value, int) else f"{value:,}"
    )
    if decimal_separator == ",":
        text = text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
    return text


def _auto_decimals(value: float) -> int:
    magnitude = abs(value)
    if magnitude == 0 or magnitude >= 1000:
        return 0 if magnitude == int(magnitude) else 1
    if magnitude >= 1:
        return 2
    return 4


def format_percent(share: Any, *, decimals: int = 1, decimal_separator: str = ".") -> str:
    if share is None:
        return "–"
    number = format_number(
        float(share) * 100, decimals=decimals, decimal_separator=decimal_separator
    )
    return f"{number} %"


def format_cell(value: Any, *, decimal_separator: str = ".") -> str:
    """A data value as stored, full precision: only the decimal separator follows the user."""
    if isinstance(value, float) and not isinstance(value, bool):
        text = repr(value)
        return text.replace(".", ",") if decimal_separator == "," else text
    return str(value)
