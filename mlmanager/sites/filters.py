"""Filters of the sites and sensors lists, one FilterSet per list (validation and the schema:
core.filters).

Sites: `status`, `search` (in the name, location and description). Sensors: `site`, `type`,
`active`. Each only narrows what the selector already scoped to the caller's sites. (Alerts
are the monitoring app's: monitoring.rule_filters.)
"""

from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field

from mlmanager.core.filters import BooleanFilter, FilterSet, PositiveIntegerFilter
from mlmanager.sites.models import Sensor, Site

# The choices are documented inline: a component "StatusEnum" would collide with the jobs'.


@extend_schema_field({"type": "string", "enum": Site.Status.values})
class SiteStatusFilter(django_filters.ChoiceFilter):
    pass


@extend_schema_field({"type": "string", "enum": Sensor.Type.values})
class SensorTypeFilter(django_filters.ChoiceFilter):
    pass


@extend_schema_field({"type": "string", "minLength": 1})  # an empty one is refused (400)
class SearchFilter(django_filters.CharFilter):
    pass


class SiteFilter(FilterSet):
    status = SiteStatusFilter(label=_("Status"), choices=Site.Status.choices)
    search = SearchFilter(
        label=_("Search"),
        method="filter_search",
        max_length=200,
        help_text=_("Text in the site's name, location or description."),
    )

    class Meta(FilterSet.Meta):
        model = Site
        fields: list[str] = []

    def filter_search(self, queryset: QuerySet[Site], name: str, value: str) -> QuerySet[Site]:
        text = value.strip()
        if not text:
            return queryset
        return queryset.filter(
            Q(name__icontains=text) | Q(location__icontains=text) | Q(description__icontains=text)
        )


class SensorFilter(FilterSet):
    site = PositiveIntegerFilter(field_name="site_id", help_text=_("A site's id."))
    type = SensorTypeFilter(label=_("Type"), field_name="sensor_type", choices=Sensor.Type.choices)
    active = BooleanFilter(field_name="is_active", help_text=_("Switched on (true) or off."))

    class Meta(FilterSet.Meta):
        model = Sensor
        fields: list[str] = []
