"""{% datetime value %}, {% date value %}, {% number value 2 %} in the signed-in user's format."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django import template

from mlmanager.core import formatting

register = template.Library()


def _preferences(context: template.Context) -> dict[str, str]:
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "date_order": user.date_order,
        "date_separator": user.date_separator,
        "time_format": user.time_format,
        "decimal_separator": user.decimal_separator,
    }


@register.simple_tag(takes_context=True, name="datetime")
def datetime_tag(context: template.Context, value: datetime | None) -> str:
    if value is None:
        return "–"
    prefs = _preferences(context)
    prefs.pop("decimal_separator", None)
    return formatting.format_datetime(value, **prefs)


@register.simple_tag(takes_context=True, name="date")
def date_tag(context: template.Context, value: date | None) -> str:
    if value is None:
        return "–"
    prefs = _preferences(context)
    return formatting.format_date(
        value,
        date_order=prefs.get("date_order", "YMD"),
        date_separator=prefs.get("date_separator", "-"),
    )


@register.simple_tag(takes_context=True, name="number")
def number_tag(context: template.Context, value: Any, decimals: int | None = None) -> str:
    prefs = _preferences(context)
    return formatting.format_number(
        value, decimals=decimals, decimal_separator=prefs.get("decimal_separator", ".")
    )


@register.simple_tag(takes_context=True)
def now_datetime(context: template.Context) -> str:
    from django.utils import timezone

    return datetime_tag(context, timezone.now())


@register.simple_tag(takes_context=True)
def percent(context: template.Context, share: Any, decimals: int = 1) -> str:
    separator = _preferences(context).get("decimal_separator", ".")
    return formatting.format_percent(share, decimals=decimals, decimal_separator=separator)


@register.simple_tag(takes_context=True)
def cell(context: template.Context, value: Any) -> str:
    separator = _preferences(context).get("decimal_separator", ".")
    return formatting.format_cell(value, decimal_separator=separator)
