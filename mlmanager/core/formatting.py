"""Dates and numbers in each user's own format (EasyAutoML's locale preferences).

A request's preferences are active for its whole duration (accounts' preferences middleware
calls `activate`, as it activates the user's time zone), so code that builds text before a
template runs — chart labels, messages — follows the user without being handed them: every
function here takes its preferences from keyword arguments when given, else from
`active()`. Outside a request the defaults apply (point, year-month-day, 24 hours, UTC).

Charts: label axis ticks with `tick_labels(values)` (or pick them with `nice_ticks(low, high)`),
tooltips and single values with `format_significant(value)`, ISO dates from profiles with
`format_iso(text)`.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from asgiref.local import Local
from django.utils import timezone

_DATE_PATTERNS = {"DMY": ("%d", "%m", "%Y"), "MDY": ("%m", "%d", "%Y"), "YMD": ("%Y", "%m", "%d")}


@dataclass(frozen=True)
class Preferences:
    """How one user reads numbers, dates and times (the time zone is Django's active one)."""

    decimal_separator: str = "."
    date_order: str = "YMD"
    date_separator: str = "-"
    time_format: str = "24"

    @classmethod
    def of(cls, user: Any) -> Preferences:
        """A signed-in user's preferences; the defaults for anyone else."""
        if user is None or not getattr(user, "is_authenticated", False):
            return DEFAULT
        return cls(
            decimal_separator=user.decimal_separator or DEFAULT.decimal_separator,
            date_order=user.date_order or DEFAULT.date_order,
            date_separator=user.date_separator or DEFAULT.date_separator,
            time_format=user.time_format or DEFAULT.time_format,
        )


DEFAULT = Preferences()

# Per thread and per asyncio task, like django.utils.timezone's active zone.
_active = Local()


def activate(preferences: Preferences) -> None:
    _active.value = preferences


def deactivate() -> None:
    if hasattr(_active, "value"):
        del _active.value


def active() -> Preferences:
    return getattr(_active, "value", DEFAULT)


@contextmanager
def override(preferences: Preferences) -> Iterator[None]:
    previous = getattr(_active, "value", None)
    activate(preferences)
    try:
        yield
    finally:
        if previous is None:
            deactivate()
        else:
            activate(previous)


def _chosen(preferences: Preferences | None, **given: str | None) -> Preferences:
    """`preferences` (or the active ones) with any explicitly given field replacing its own."""
    base = preferences or active()
    explicit = {name: value for name, value in given.items() if value is not None}
    return replace(base, **explicit) if explicit else base


# Dates and times


def format_date(
    value: date,
    *,
    date_order: str | None = None,
    date_separator: str | None = None,
    preferences: Preferences | None = None,
) -> str:
    prefs = _chosen(preferences, date_order=date_order, date_separator=date_separator)
    parts = _DATE_PATTERNS.get(prefs.date_order, _DATE_PATTERNS["YMD"])
    return value.strftime(prefs.date_separator.join(parts))


def format_time(
    value: time | datetime,
    *,
    time_format: str | None = None,
    seconds: bool = False,
    preferences: Preferences | None = None,
) -> str:
    prefs = _chosen(preferences, time_format=time_format)
    minutes = "%M:%S" if seconds else "%M"
    if prefs.time_format == "12":
        return value.strftime(f"%I:{minutes} %p").lstrip("0")
    return value.strftime(f"%H:{minutes}")


def format_datetime(
    value: datetime,
    *,
    date_order: str | None = None,
    date_separator: str | None = None,
    time_format: str | None = None,
    seconds: bool = False,
    preferences: Preferences | None = None,
) -> str:
    """Shown in the active time zone (the user's, set by the preferences middleware); a naive
    value (a data cell) is shown as it is."""
    prefs = _chosen(
        preferences, date_order=date_order, date_separator=date_separator, time_format=time_format
    )
    if timezone.is_aware(value):
        value = timezone.localtime(value)
    date_part = format_date(value, preferences=prefs)
    return f"{date_part} {format_time(value, seconds=seconds, preferences=prefs)}"


def format_moment(value: date | datetime, *, preferences: Preferences | None = None) -> str:
    """A date, or a date and time — a naive midnight (a date-only column) as the date alone,
    seconds only where the value has them."""
    if not isinstance(value, datetime):
        return format_date(value, preferences=preferences)
    if timezone.is_naive(value) and value.time() == time():
        return format_date(value, preferences=preferences)
    seconds = bool(value.second or value.microsecond)
    return format_datetime(value, seconds=seconds, preferences=preferences)


_ISO_MOMENT = re.compile(
    r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?$"
)


def format_iso(value: Any, *, preferences: Preferences | None = None) -> str:
    """An ISO date or date-time written as text (profiles store their dates so) in the user's
    format; any other text unchanged."""
    text = str(value)
    if not _ISO_MOMENT.match(text):
        return text
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    return format_moment(moment, preferences=preferences)


# Numbers


def _with_separator(text: str, decimal_separator: str) -> str:
    """`text` written with point decimals and comma thousands, in the user's separators."""
    if decimal_separator != ",":
        return text
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def format_number(
    value: Any,
    *,
    decimals: int | None = None,
    decimal_separator: str | None = None,
    preferences: Preferences | None = None,
) -> str:
    """Thousands grouped; the decimal comma swaps the roles of '.' and ','. Without `decimals`,
    a whole number shows none, one past 1,000 a single decimal, any other four significant
    digits (a std of 0.0000123 is not "0.0000"). A number given as text (JSON) is read first."""
    separator = _chosen(preferences, decimal_separator=decimal_separator).decimal_separator
    if value is None or value == "":
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return value
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return str(value)
    if decimals is None:
        if isinstance(value, int):
            return _with_separator(f"{value:,}", separator)
        magnitude = abs(float(value))
        if magnitude >= 1000:
            decimals = 0 if magnitude.is_integer() else 1
        else:
            return format_significant(value, decimal_separator=separator)
    return _with_separator(f"{float(value):,.{decimals}f}", separator)


def format_significant(
    value: Any,
    digits: int = 4,
    *,
    decimal_separator: str | None = None,
    preferences: Preferences | None = None,
) -> str:
    """`digits` significant digits without trailing zeros (2.0508 → 2.051, 0.29999999999999993
    → 0.3), never fewer than the integer part's digits (123456.7 → 123,457); chart labels,
    tooltips and scores."""
    separator = _chosen(preferences, decimal_separator=decimal_separator).decimal_separator
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(number):
        return str(number)
    if number == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(number)))
    if magnitude < -9:  # tinier than any value a user reads digit by digit
        mantissa, exponent = f"{number:.{digits - 1}e}".split("e")
        mantissa = mantissa.rstrip("0").rstrip(".")
        return _with_separator(f"{mantissa}e{int(exponent)}", separator)
    decimals = max(0, digits - 1 - magnitude)
    text = f"{number:,.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in {"-0", ""}:
        text = "0"
    return _with_separator(text, separator)


def format_percent(
    share: Any,
    *,
    decimals: int = 1,
    decimal_separator: str | None = None,
    preferences: Preferences | None = None,
) -> str:
    if share is None:
        return "–"
    separator = _chosen(preferences, decimal_separator=decimal_separator).decimal_separator
    number = format_number(float(share) * 100, decimals=decimals, decimal_separator=separator)
    return f"{number} %"


# Digits enough to tell apart two floats a computation made from one a person typed, few
# enough to drop their binary noise: 13.690000000000001 → 13.69, 0.1 + 0.2 → 0.3.
CELL_SIGNIFICANT_DIGITS = 15


def format_cell(
    value: Any,
    *,
    decimal_separator: str | None = None,
    preferences: Preferences | None = None,
) -> str:
    """A data value as stored — numbers ungrouped, every meaningful digit kept, without float
    noise — with the user's decimal separator and dates in their order."""
    prefs = _chosen(preferences, decimal_separator=decimal_separator)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        text = f"{value:.{CELL_SIGNIFICANT_DIGITS}g}"
        if "e" in text and 1e-5 <= abs(value) < 1e16:
            text = f"{value:.{CELL_SIGNIFICANT_DIGITS}f}".rstrip("0").rstrip(".")
        return text.replace(".", ",") if prefs.decimal_separator == "," else text
    if isinstance(value, date):
        return format_moment(value, preferences=prefs)
    if isinstance(value, str):
        return format_iso(value, preferences=prefs)
    return str(value)


_UNITS = ("bytes", "KB", "MB", "GB", "TB", "PB")


def format_filesize(size: Any, *, preferences: Preferences | None = None) -> str:
    """1,5 MB for a decimal comma; powers of 1024 and the unit names of Django's filesizeformat."""
    if size is None or size == "":
        return "–"
    try:
        amount = float(size)
    except (TypeError, ValueError):
        return "–"
    unit = 0
    while abs(amount) >= 1024 and unit < len(_UNITS) - 1:
        amount /= 1024
        unit += 1
    if unit == 0:
        return f"{format_number(int(amount), preferences=preferences)} {_UNITS[0]}"
    return f"{format_number(amount, decimals=1, preferences=preferences)} {_UNITS[unit]}"


def format_duration(seconds: Any, *, preferences: Preferences | None = None) -> str:
    """Timings: 0,35 s · 12,4 s · 3 min 05 s · 2 h 04 min."""
    if seconds is None or seconds == "":
        return "–"
    value = float(seconds)
    if value < 10:
        return f"{format_significant(value, 2, preferences=preferences)} s"
    if value < 60:
        return f"{format_number(value, decimals=1, preferences=preferences)} s"
    whole = round(value)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


# Chart axes


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About `count` round values (steps of 1, 2 or 5 times a power of ten) spanning low–high."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return []
    if high < low:
        low, high = high, low
    if high == low:
        return [low]
    raw = (high - low) / max(1, count - 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(factor * power for factor in (1, 2, 2.5, 5, 10) if factor * power >= raw)
    first = math.floor(low / step) * step
    ticks = []
    index = 0
    while True:
        value = first + index * step
        if value > high + step * 1e-9:
            break
        if value >= low - step * 1e-9:
            # Computed ticks carry noise (0.30000000000000004): round to the step's digits.
            ticks.append(round(value, max(0, -math.floor(math.log10(step)) + 2)))
        index += 1
    return ticks


def tick_labels(values: Sequence[Any], *, preferences: Preferences | None = None) -> list[str]:
    """Labels for an axis's ticks: as many decimals as the closest two ticks need to differ
    (0; 0,5; 1 → "0,0", "0,5", "1,0"), never float noise, in the user's separators."""
    numbers = [float(value) for value in values]
    finite = sorted({n for n in numbers if math.isfinite(n)})
    steps = [b - a for a, b in itertools.pairwise(finite) if b > a]
    if not steps:
        return [format_significant(n, preferences=preferences) for n in numbers]
    decimals = min(12, max(0, -math.floor(math.log10(min(steps)) + 1e-9)))
    # A step like 2.5 needs one decimal more than its power of ten says.
    while decimals < 12 and any(
        not math.isclose(round(s, decimals), s, rel_tol=1e-6, abs_tol=1e-12) for s in steps
    ):
        decimals += 1
    return [
        format_number(n, decimals=decimals, preferences=preferences) if math.isfinite(n) else str(n)
        for n in numbers
    ]


# Free text the platform wrote (job messages, log lines): written with point decimals and
# comma thousands ("1,000 rows read", "best rmse 2.051"), shown in the reader's separators. A
# number is a run of digits not glued to letters, dots or more digits (not "v1.2.3", "10.0.0.1",
# "file-1.5.csv"); times ("17:30:05") and dates have no decimal point, so they are left alone.
_TEXT_NUMBER = re.compile(
    r"(?<![\w.,])(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+\.\d+)(?!\w|[.,]\d|\.[^\W\d])"
)


def localize_text(text: str, *, preferences: Preferences | None = None) -> str:
    prefs = _chosen(preferences)
    if prefs.decimal_separator != "," or not text:
        return text
    return _TEXT_NUMBER.sub(lambda match: _with_separator(match.group(), ","), text)


# jobs.services.job_append_log stamps each line with the UTC time it was written.
_LOG_STAMP = re.compile(r"^(\d{2}):(\d{2}):(\d{2}) ")


# Clocks of the web server (which records `created_at`) and the worker (which stamps log lines)
# may differ by this much without a stamp being taken for the next day.
_CLOCK_SKEW = timedelta(hours=1)


def format_log(
    text: str, *, created: datetime | None = None, preferences: Preferences | None = None
) -> list[str]:
    """A job's log, stored with UTC times of day, as lines stamped in the user's time zone and
    clock with numbers in their separators. Each stamp is dated from the one before it (the
    first from `created`, when the job was created): a time earlier than that is the next day,
    which decides the offset on the days the clocks change."""
    prefs = _chosen(preferences)
    previous = (created or timezone.now()).astimezone(UTC)
    lines = []
    for line in text.splitlines():
        stamp = _LOG_STAMP.match(line)
        if stamp is None:
            lines.append(localize_text(line, preferences=prefs))
            continue
        hour, minute, second = (int(part) for part in stamp.groups())
        moment = previous.replace(hour=hour, minute=minute, second=second, microsecond=0)
        if moment < previous - _CLOCK_SKEW:
            moment += timedelta(days=1)
        previous = moment
        shown = format_time(timezone.localtime(moment), seconds=True, preferences=prefs)
        rest = localize_text(line[stamp.end() :], preferences=prefs)
        lines.append(f"{shown} {rest}")
    return lines
