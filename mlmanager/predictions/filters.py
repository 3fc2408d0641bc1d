"""Filters of the prediction log (GET /api/v1/predictions/); validation is core.filters'."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from mlmanager.core.filters import BooleanFilter, FilterSet, PositiveIntegerFilter
from mlmanager.predictions.models import Prediction


class PredictionFilter(FilterSet):
    model = PositiveIntegerFilter(field_name="machine_id", help_text="A model's id.")
    version = PositiveIntegerFilter(field_name="version_number", help_text="A version number.")
    source = django_filters.ChoiceFilter(choices=Prediction.Source.choices)
    has_feedback = BooleanFilter(
        method="filter_has_feedback", help_text="Only predictions with (or without) feedback."
    )

    def filter_has_feedback(
        self, queryset: QuerySet[Prediction], name: str, value: bool
    ) -> QuerySet[Prediction]:
        return queryset.filter(feedback__isnull=not value)
