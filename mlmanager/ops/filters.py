"""Filters of the platform log page (validation: core.filters).

`level` is a minimum (`error` also shows critical entries), `logger` a logger and its children
(`mlmanager.jobs` finds `mlmanager.jobs.runner`), `q` text in the message or the traceback,
`since`/`until` ISO 8601 dates or date-times as on the audit log (a date alone is that whole
day for `until`).
"""

from __future__ import annotations

import datetime as dt
import logging

import django_filters
from django import forms
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from mlmanager.audit.filters import MomentFilter
from mlmanager.core.filters import (
    FilterSet,
    PositiveIntegerFilter,
    created_since,
    created_until,
)
from mlmanager.ops.models import PlatformLogEntry, ProcessKind

LEVEL_CHOICES = [
    ("warning", _("Warning and above")),
    ("error", _("Error and above")),
    ("critical", _("Critical")),
]
_LEVELS = {"warning": logging.WARNING, "error": logging.ERROR, "critical": logging.CRITICAL}


class PlatformLogFilter(FilterSet):
    level = django_filters.ChoiceFilter(
        label=_("Level"), choices=LEVEL_CHOICES, method="filter_level", empty_label=_("any")
    )
    process = django_filters.ChoiceFilter(
        label=_("Process"), choices=ProcessKind.choices, field_name="process", empty_label=_("any")
    )
    logger = django_filters.CharFilter(
        label=_("Logger"),
        method="filter_logger",
        max_length=200,
        widget=forms.TextInput(attrs={"placeholder": "mlmanager.jobs"}),
    )
    q = django_filters.CharFilter(
        label=_("Text"),
        method="filter_text",
        max_length=200,
        help_text=_("In the message or the traceback."),
    )
    since = MomentFilter(
        label=_("From"),
        method="filter_since",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    until = MomentFilter(
        label=_("To"),
        method="filter_until",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    request_id = django_filters.CharFilter(
        label=_("Request id"), field_name="request_id", max_length=64
    )
    job_id = PositiveIntegerFilter(label=_("Job id"), field_name="job_id")

    class Meta(FilterSet.Meta):
        model = PlatformLogEntry
        fields: list[str] = []

    def filter_level(
        self, queryset: QuerySet[PlatformLogEntry], name: str, value: str
    ) -> QuerySet[PlatformLogEntry]:
        return queryset.filter(level__gte=_LEVELS[value])

    def filter_logger(
        self, queryset: QuerySet[PlatformLogEntry], name: str, value: str
    ) -> QuerySet[PlatformLogEntry]:
        value = value.strip().rstrip(".")
        return queryset.filter(Q(logger=value) | Q(logger__startswith=f"{value}."))

    def filter_text(
        self, queryset: QuerySet[PlatformLogEntry], name: str, value: str
    ) -> QuerySet[PlatformLogEntry]:
        return queryset.filter(Q(message__icontains=value) | Q(traceback__icontains=value))

    def filter_since(
        self, queryset: QuerySet[PlatformLogEntry], name: str, value: dt.date
    ) -> QuerySet[PlatformLogEntry]:
        return created_since(queryset, value)

    def filter_until(
        self, queryset: QuerySet[PlatformLogEntry], name: str, value: dt.date
    ) -> QuerySet[PlatformLogEntry]:
        return created_until(queryset, value)
