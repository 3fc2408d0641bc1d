"""Filters of the alert rules and alerts lists (validation and schema: core.filters), shared by
the API and the pages. Each only narrows what the selector already scoped to the caller.

Rules: `site`, `model`, `builtin`, `state`. Alerts: `state`, `severity`, `site`, `model`,
`rule`, `acknowledged`, `muted`.
"""

from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field

from mlmanager.core.filters import BooleanFilter, FilterSet, PositiveIntegerFilter
from mlmanager.monitoring.models import Alert, AlertRule, Severity


@extend_schema_field({"type": "string", "enum": AlertRule.State.values})
class RuleStateFilter(django_filters.ChoiceFilter):
    pass


@extend_schema_field({"type": "string", "enum": Alert.State.values})
class AlertStateFilter(django_filters.ChoiceFilter):
    pass


@extend_schema_field({"type": "string", "enum": Severity.values})
class SeverityFilter(django_filters.ChoiceFilter):
    pass


def _watching_model(machine_id: int) -> QuerySet:
    return AlertRule.machines.through.objects.filter(machine_id=machine_id).values("alertrule_id")


class RuleFilter(FilterSet):
    site = PositiveIntegerFilter(field_name="site_id", help_text=_("A site's id."))
    model = PositiveIntegerFilter(
        method="filter_model", help_text=_("A model's id: the rules on its signals.")
    )
    builtin = BooleanFilter(
        method="filter_builtin",
        help_text=_("A sensor's built-in band rule (true) or a rule people wrote (false)."),
    )
    state = RuleStateFilter(label=_("State"), choices=AlertRule.State.choices)

    class Meta(FilterSet.Meta):
        model = AlertRule
        fields: list[str] = []

    def filter_model(
        self, queryset: QuerySet[AlertRule], name: str, value: int | None
    ) -> QuerySet[AlertRule]:
        if value is None:
            return queryset
        return queryset.filter(pk__in=_watching_model(value))

    def filter_builtin(
        self, queryset: QuerySet[AlertRule], name: str, value: bool | None
    ) -> QuerySet[AlertRule]:
        if value is None:
            return queryset
        return queryset.exclude(builtin="") if value else queryset.filter(builtin="")


class AlertFilter(FilterSet):
    state = AlertStateFilter(label=_("State"), choices=Alert.State.choices)
    severity = SeverityFilter(label=_("Severity"), choices=Severity.choices)
    site = PositiveIntegerFilter(field_name="site_id", help_text=_("A site's id."))
    model = PositiveIntegerFilter(
        method="filter_model", help_text=_("A model's id: alerts about it or its rules.")
    )
    rule = PositiveIntegerFilter(field_name="rule_id", help_text=_("A rule's id."))
    acknowledged = BooleanFilter(
        method="filter_acknowledged", help_text=_("Acknowledged (true) or not yet (false).")
    )
    muted = BooleanFilter(method="filter_muted", help_text=_("Muted now (true) or not (false)."))

    class Meta(FilterSet.Meta):
        model = Alert
        fields: list[str] = []

    def filter_model(
        self, queryset: QuerySet[Alert], name: str, value: int | None
    ) -> QuerySet[Alert]:
        if value is None:
            return queryset
        return queryset.filter(Q(machine_id=value) | Q(rule_id__in=_watching_model(value)))

    def filter_acknowledged(
        self, queryset: QuerySet[Alert], name: str, value: bool | None
    ) -> QuerySet[Alert]:
        if value is None:
            return queryset
        return queryset.filter(acknowledged_at__isnull=not value)

    def filter_muted(
        self, queryset: QuerySet[Alert], name: str, value: bool | None
    ) -> QuerySet[Alert]:
        if value is None:
            return queryset
        return queryset.muted() if value else queryset.unmuted()  # type: ignore[attr-defined]
