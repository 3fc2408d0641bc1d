"""Numbers, dates and times in the signed-in user's format (mlmanager.core.formatting).

Tags: {% datetime value %}, {% date value %}, {% number value 2 %}, {% significant value 3 %},
{% percent share %}, {% cell value %}, {% now_datetime %}.
Filters: |number:2 and |significant:3 (the tags' twins, for {% blocktranslate with ... %}),
|filesizeformat (replaces Django's, which writes a point decimal), |duration (seconds),
|localized (text the platform wrote, e.g. a job's message), |job_log (a job's log lines, stamped
in the user's zone), |when (a date, or an ISO date written as text).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django import template

from mlmanager.core import formatting

register = template.Library()


def _preferences(context: template.Context) -> formatting.Preferences:
    """The request's user's preferences (a page rendered for someone, e.g. an e-mail, may set
    `request` in its context), else those active for this request."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return formatting.Preferences.of(user)
    return formatting.active()


@register.simple_tag(takes_context=True, name="datetime")
def datetime_tag(context: template.Context, value: datetime | None) -> str:
    if value is None:
        return "–"
    return formatting.format_datetime(value, preferences=_preferences(context))


@register.simple_tag(takes_context=True, name="date")
def date_tag(context: template.Context, value: date | None) -> str:
    if value is None:
        return "–"
    return formatting.format_date(value, preferences=_preferences(context))


@register.simple_tag(takes_context=True, name="number")
def number_tag(context: template.Context, value: Any, decimals: int | None = None) -> str:
    return formatting.format_number(value, decimals=decimals, preferences=_preferences(context))


@register.simple_tag(takes_context=True)
def significant(context: template.Context, value: Any, digits: int = 4) -> str:
    """Scores, chart values: `digits` significant digits, no trailing zeros, no float noise."""
    if value is None or value == "":
        return "–"
    return formatting.format_significant(value, digits, preferences=_preferences(context))


@register.simple_tag(takes_context=True)
def now_datetime(context: template.Context) -> str:
    from django.utils import timezone

    return datetime_tag(context, timezone.now())


@register.simple_tag(takes_context=True)
def percent(context: template.Context, share: Any, decimals: int = 1) -> str:
    return formatting.format_percent(share, decimals=decimals, preferences=_preferences(context))


@register.simple_tag(takes_context=True)
def cell(context: template.Context, value: Any) -> str:
    return formatting.format_cell(value, preferences=_preferences(context))


# Filters take no context: they use the preferences active for the request.


@register.filter(name="filesizeformat", is_safe=True)
def filesize(size: Any) -> str:
    """Django's filesizeformat writes "1.5 MB" whatever the user reads; loading this library
    replaces it in the template, so every size shown follows the preferences."""
    return formatting.format_filesize(size)


@register.filter(name="significant")
def significant_filter(value: Any, digits: int = 4) -> str:
    """The tag's twin where a tag cannot go: {% blocktranslate with ms=total|significant:3 %}."""
    if value is None or value == "":
        return "–"
    return formatting.format_significant(value, int(digits))


@register.filter(name="number")
def number_filter(value: Any, decimals: int | None = None) -> str:
    """The tag's twin where a tag cannot go: {% blocktranslate with share=progress|number %}."""
    return formatting.format_number(value, decimals=None if decimals is None else int(decimals))


@register.filter
def duration(seconds: Any) -> str:
    return formatting.format_duration(seconds)


@register.filter
def localized(text: Any) -> str:
    """Text the platform wrote with point decimals (a job's message, a log line)."""
    return formatting.localize_text("" if text is None else str(text))


@register.filter
def job_log(job: Any) -> list[str]:
    """The job's log lines, their UTC stamps shown in the user's zone and clock."""
    return formatting.format_log(job.log or "", created=job.created_at)


@register.filter
def when(value: Any) -> str:
    """A date or date-time, also one written as ISO text (profile statistics)."""
    if value is None or value == "":
        return "–"
    if isinstance(value, date):
        return formatting.format_moment(value)
    return formatting.format_iso(value)
