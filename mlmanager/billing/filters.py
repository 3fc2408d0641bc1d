"""The ledger's filter, one FilterSet for the page and the API (validation: core.filters)."""

from __future__ import annotations

import django_filters
from django.utils.translation import gettext_lazy as _

from mlmanager.billing.models import Operation
from mlmanager.core.filters import FilterSet


class OperationFilter(FilterSet):
    kind = django_filters.ChoiceFilter(
        choices=Operation.Kind.choices, label=_("Kind"), empty_label=_("Any kind")
    )

    class Meta(FilterSet.Meta):
        model = Operation
        fields = ["kind"]
