"""Filters of the dataset list (GET /api/v1/datasets/); validation is core.filters'."""

from __future__ import annotations

import django_filters

from mlmanager.core.filters import FilterSet, PositiveIntegerFilter
from mlmanager.datasets.models import Dataset


class DatasetFilter(FilterSet):
    status = django_filters.ChoiceFilter(choices=Dataset.Status.choices)
    team = PositiveIntegerFilter(field_name="team_id", help_text="A team's id.")
