"""Filters of the catalogue (the page and GET /api/v1/marketplace/listings/)."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field

from mlmanager.core.filters import FilterSet
from mlmanager.marketplace.models import Listing


@extend_schema_field({"type": "string", "minLength": 1, "maxLength": 200})
class SearchFilter(django_filters.CharFilter):
    pass


class ListingFilter(FilterSet):
    search = SearchFilter(
        method="filter_search",
        max_length=200,
        label=_("Title or description"),
        help_text="Words of the title or description.",
    )
    category = django_filters.ChoiceFilter(choices=Listing.Category.choices)
    kind = django_filters.ChoiceFilter(choices=Listing.Kind.choices)

    def filter_search(self, queryset: QuerySet[Listing], name: str, value: Any) -> Any:
        text = value.strip()
        if not text:
            return queryset
        return queryset.filter(Q(title__icontains=text) | Q(description__icontains=text))
