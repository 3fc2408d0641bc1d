"""Filters of the charts and dashboards lists (validation and schema: core.filters), shared by
the API and the pages; each only narrows what the selector already scoped to the caller.

Charts: `site`, `search`. Dashboards: `site`,
`search`. (Rules and alerts: rule_filters.)
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field

from mlmanager.core.filters import FilterSet, PositiveIntegerFilter
from mlmanager.monitoring.models import Chart, Dashboard


@extend_schema_field({"type": "string", "minLength": 1, "maxLength": 200})
class SearchFilter(django_filters.CharFilter):
    pass


def _search(queryset: QuerySet[Any], value: str) -> QuerySet[Any]:
    text = value.strip()
    if not text:
        return queryset
    return queryset.filter(Q(name__icontains=text) | Q(description__icontains=text))


class ChartFilter(FilterSet):
    site = PositiveIntegerFilter(field_name="site_id", help_text=_("A site's id."))
    search = SearchFilter(
        label=_("Search"),
        method="filter_search",
        max_length=200,
        help_text=_("Text in the chart's name or description."),
    )

    class Meta(FilterSet.Meta):
        model = Chart
        fields: list[str] = []

    def filter_search(self, queryset: QuerySet[Chart], name: str, value: str) -> QuerySet[Chart]:
        return _search(queryset, value)


class DashboardFilter(FilterSet):
    site = PositiveIntegerFilter(field_name="site_id", help_text=_("A site's id."))
    search = SearchFilter(
        label=_("Search"),
        method="filter_search",
        max_length=200,
        help_text=_("Text in the dashboard's name or description."),
    )

    class Meta(FilterSet.Meta):
        model = Dashboard
        fields: list[str] = []

    def filter_search(
        self, queryset: QuerySet[Dashboard], name: str, value: str
    ) -> QuerySet[Dashboard]:
        return _search(queryset, value)
