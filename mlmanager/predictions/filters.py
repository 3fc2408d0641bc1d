"""Filters of the prediction log, shared by GET /api/v1/predictions/ (strict: a bad value is a
400) and the log pages (a bad value is left out); validation is core.filters'."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import django_filters
from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from mlmanager.core.filters import BooleanFilter, FilterSet, PositiveIntegerFilter, start_of_day
from mlmanager.machines.selectors import machines_for_caller
from mlmanager.predictions.models import Prediction

DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def _team_model_choices(request: Any) -> Callable[[], list[tuple[Any, Any]]]:
    """The model filter's choices on a page: the current team's models, by name. A callable,
    so only a page that renders the form queries them (the API never does)."""

    def choices() -> list[tuple[Any, Any]]:
        team = getattr(request, "team", None)
        if team is None:
            return [("", _("any"))]
        machines = machines_for_caller(caller=request.caller, team=team).order_by("name", "pk")
        return [("", _("any")), *machines.values_list("pk", "name")]

    return choices


class PredictionFilter(FilterSet):
    model = PositiveIntegerFilter(
        field_name="machine_id", label=_("Model"), help_text="A model's id."
    )
    version = PositiveIntegerFilter(
        field_name="version_number", label=_("Version"), help_text="A version number."
    )
    source = django_filters.ChoiceFilter(
        label=_("Source"), choices=Prediction.Source.choices, empty_label=_("any")
    )
    has_feedback = BooleanFilter(
        method="filter_has_feedback",
        label=_("Feedback"),
        help_text="Only predictions with (or without) feedback.",
        widget=forms.Select(
            choices=[("", _("any")), ("true", _("given")), ("false", _("not given"))]
        ),
    )
    since = django_filters.DateFilter(
        method="filter_since",
        label=_("From"),
        help_text="Only predictions made on this day (the user's time zone) or later.",
        widget=DATE_INPUT,
    )
    until = django_filters.DateFilter(
        method="filter_until",
        label=_("To"),
        help_text="Only predictions made on this day (the user's time zone) or earlier.",
        widget=DATE_INPUT,
    )

    def adapt_to_page(self) -> None:
        # A page offers the team's models by name; one that is not among them (another
        # team's, a stale link's) is left out like any value the page cannot use, where the
        # API answers an empty list.
        self.form.fields["model"] = forms.TypedChoiceField(
            label=_("Model"), choices=_team_model_choices(self.request), coerce=int, required=False
        )

    def filter_has_feedback(
        self, queryset: QuerySet[Prediction], name: str, value: bool
    ) -> QuerySet[Prediction]:
        return queryset.filter(feedback__isnull=not value)

    def filter_since(
        self, queryset: QuerySet[Prediction], name: str, value: dt.date
    ) -> QuerySet[Prediction]:
        start = start_of_day(value)
        return queryset if start is None else queryset.filter(created_at__gte=start)

    def filter_until(
        self, queryset: QuerySet[Prediction], name: str, value: dt.date
    ) -> QuerySet[Prediction]:
        # Through the whole last day: before the next midnight.
        end = start_of_day(value + dt.timedelta(days=1)) if value < dt.date.max else None
        return queryset if end is None else queryset.filter(created_at__lt=end)
