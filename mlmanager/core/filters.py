"""The list filters: django-filter FilterSets, one per list, shared by its API and its page.

A list API view declares `filterset_class` (its app's `filters.py`) and passes the caller's own
queryset through `filter_queryset`; the schema reads the same class (core.api.AutoSchema). The
list page passes the same class to `page_filter`.
A filter only narrows what the selector already scoped to the caller's teams, so an id of
another team's object yields an empty list, never its rows.

Every parameter a FilterSet declares is strict: a value that is not of its type or choices,
an id past what an id column holds (SQLite raised OverflowError on those), a parameter sent
empty (`?status=`) or a NUL character answers 400 with the parameter named.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, NoReturn

import django_filters
from django import forms
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework.request import Request

from mlmanager.core.errors import ApplicationError
from mlmanager.core.parsers import contains_nul, invalid_text

# The largest value of a 64-bit signed id column (BigAutoField on SQLite and PostgreSQL).
MAX_ID = 2**63 - 1


def raise_invalid_filter(errors: Mapping[str, Any]) -> NoReturn:
    """400 `invalid_filter`; `details` maps each refused parameter to its messages."""
    details = {name: [str(message) for message in messages] for name, messages in errors.items()}
    name, messages = next(iter(details.items()))
    raise ApplicationError(
        _("Query parameter %(name)s: %(message)s") % {"name": name, "message": messages[0]},
        code="invalid_filter",
        details=details,
    )


class StrictFilterForm(forms.Form):
    """A FilterSet's form that refuses a declared parameter sent without a value: django-filter
    reads `?status=` as "no filter", which hides a client's mistake."""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name in self.fields:
            values = self.data.getlist(name) if name in self.data else []  # type: ignore[attr-defined]
            if "" in values:
                self.add_error(name, _("This parameter may not be empty."))
        return cleaned


class FilterSet(django_filters.FilterSet):
    """Base of the list FilterSets (see the module docstring)."""

    class Meta:
        form = StrictFilterForm

    def adapt_to_page(self) -> None:
        """Where a page's form differs from the API's, before it validates (page_filter): a
        list of the team's objects to choose from where the API reads an id, say."""


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_ID})
class PositiveIntegerFilter(django_filters.Filter):
    """An id or a number: a whole number from 1 to MAX_ID (django-filter's NumberFilter takes any
    decimal, which the database then cannot compare)."""

    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class StrictBooleanField(forms.Field):
    """`true` or `false`, as the schema's boolean is written in a query string; Django's
    NullBooleanField reads anything else as "not given"."""

    values = {"true": True, "false": False}

    def to_python(self, value: Any) -> bool | None:
        if value in self.empty_values:
            return None
        if value not in self.values:
            raise forms.ValidationError(_("Enter true or false."), code="invalid")
        return self.values[value]


@extend_schema_field({"type": "boolean"})
class BooleanFilter(django_filters.Filter):
    field_class = StrictBooleanField


def filter_queryset(
    *, request: Request, queryset: QuerySet[Any], filterset_class: type[FilterSet]
) -> QuerySet[Any]:
    """`queryset` narrowed by the request's query parameters, or 400 naming the first bad one."""
    params = request.query_params
    declared = [name for name in filterset_class.base_filters if name in params]
    if any(contains_nul(params.getlist(name)) for name in declared):
        raise invalid_text()
    filterset = filterset_class(data=params, queryset=queryset, request=request)
    if not filterset.is_valid():
        raise_invalid_filter(filterset.errors)
    return filterset.qs  # type: ignore[no-any-return]


def page_filter(
    *, request: HttpRequest, queryset: QuerySet[Any], filterset_class: type[FilterSet]
) -> FilterSet:
    """The list page's filters: the API's, but a value the API refuses is left out, not an
    error: a page's form shows it as not chosen, and a stale link still shows a list.

    Its `.qs` is `queryset` narrowed by the valid parameters (django-filter filters by the
    form's cleaned data, which holds only the fields that validated); `.form` renders them.
    """
    filterset = filterset_class(data=request.GET or None, queryset=queryset, request=request)
    filterset.adapt_to_page()
    return filterset


def start_of_day(day: dt.date) -> dt.datetime | None:
    """Midnight of `day` in the active time zone (the user's, activated per request): dates are
    the user's days, and comparing created_at with a moment keeps its index usable. None when
    that moment is past what a datetime holds in UTC (the year 1 east of UTC)."""
    moment = timezone.make_aware(dt.datetime.combine(day, dt.time.min))
    try:
        moment.astimezone(dt.UTC)
    except OverflowError:
        return None
    return moment


def created_since(queryset: QuerySet[Any], value: dt.date) -> QuerySet[Any]:
    """Rows created at `value` (a moment) or from the start of that day (a date) on."""
    start = value if isinstance(value, dt.datetime) else start_of_day(value)
    return queryset if start is None else queryset.filter(created_at__gte=start)


def created_until(queryset: QuerySet[Any], value: dt.date) -> QuerySet[Any]:
    """Rows created up to `value` (a moment) or through the whole of that day (a date)."""
    if isinstance(value, dt.datetime):
        return queryset.filter(created_at__lte=value)
    # A day: through the whole day, before the next midnight.
    end = start_of_day(value + dt.timedelta(days=1)) if value < dt.date.max else None
    return queryset if end is None else queryset.filter(created_at__lt=end)
