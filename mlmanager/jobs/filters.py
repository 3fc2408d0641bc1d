"""Filters of the job list (GET /api/v1/jobs/); validation is core.filters'."""

from __future__ import annotations

import django_filters

from mlmanager.core.filters import FilterSet, PositiveIntegerFilter
from mlmanager.jobs.models import Job


class JobFilter(FilterSet):
    status = django_filters.ChoiceFilter(choices=Job.Status.choices)
    team = PositiveIntegerFilter(field_name="team_id", help_text="A team's id.")
