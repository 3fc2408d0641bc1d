"""Filters of the model list (GET /api/v1/models/); validation is core.filters'."""

from __future__ import annotations

import django_filters

from mlmanager.core.filters import FilterSet, PositiveIntegerFilter
from mlmanager.machines.models import Machine


class MachineFilter(FilterSet):
    team = PositiveIntegerFilter(field_name="team_id", help_text="A team's id.")
    dataset = PositiveIntegerFilter(field_name="dataset_id", help_text="A dataset's id.")
    # `status` is derived from the model's runs and versions (Machine.objects.with_status()).
    status = django_filters.ChoiceFilter(choices=Machine.Status.choices)
