"""Every list is paginated: the API by ?limit= and ?offset= (StandardPagination,
paginated_response), the list pages by ?page= (page_of)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mlmanager.core.filters import raise_invalid_filter

MAX_LIMIT = 500

# Lists whose rows are one short line each (jobs, the prediction logs) show twice as many.
LONG_LIST_FACTOR = 2


class ListPage(Page):
    """A page of a list page. `query` is the request's query string without `page`: the
    pager's links (core/partials/_pager.html) keep the list's filters."""

    query = ""


class ListPaginator(Paginator):
    def _get_page(self, *args: Any, **kwargs: Any) -> ListPage:
        return ListPage(*args, **kwargs)


def page_of(
    request: HttpRequest, items: QuerySet[Any] | Sequence[Any], *, long_list: bool = False
) -> ListPage:
    """The page of `items` that `?page=` asks for, for a list page.

    MLMANAGER_PAGE_SIZE rows (LONG_LIST_FACTOR times as many for a `long_list`). A page past
    the end shows the last one and anything that is not a page number the first, as links
    people keep outlive the rows they counted.
    """
    size = settings.MLMANAGER_PAGE_SIZE * (LONG_LIST_FACTOR if long_list else 1)
    page = cast(ListPage, ListPaginator(items, size).get_page(request.GET.get("page")))
    query = request.GET.copy()
    query.pop("page", None)
    page.query = query.urlencode()
    return page


class StandardPagination(LimitOffsetPagination):
    """Every API list is paginated: ?limit= (default 50, 1 to 500) and ?offset= (0 or more).

    DRF's own falls back to the default on a limit or offset it cannot read; here either is
    refused (400 `invalid_filter`), as the schema says, so a client's typo is not silently a
    different page.
    """

    default_limit = 50
    max_limit = MAX_LIMIT

    # The parameters as get_schema_operation_parameters documents them.
    class QuerySerializer(serializers.Serializer[Any]):
        limit = serializers.IntegerField(required=False, min_value=1, max_value=MAX_LIMIT)
        offset = serializers.IntegerField(required=False, min_value=0)

    def paginate_queryset(
        self, queryset: Any, request: Request, view: APIView | None = None
    ) -> list[Any] | None:
        query = self.QuerySerializer(
            data={
                name: request.query_params[name]
                for name in (self.limit_query_param, self.offset_query_param)
                if name in request.query_params
            }
        )
        if not query.is_valid():
            raise_invalid_filter(query.errors)
        return super().paginate_queryset(queryset, request, view)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": self.limit_query_param,
                "required": False,
                "in": "query",
                "description": str(_("Items per page (default 50).")),
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_limit},
            },
            {
                "name": self.offset_query_param,
                "required": False,
                "in": "query",
                "description": str(_("Items to skip before the page.")),
                "schema": {"type": "integer", "minimum": 0},
            },
        ]


def paginated_response(
    *,
    request: Request,
    view: APIView,
    queryset: QuerySet[Any],
    serializer_class: Any,
    context: dict[str, Any] | None = None,
) -> Response:
    """One page of `queryset` in the list shape {count, next, previous, results}; the schema
    documents every GET that answers a list (`many=True`) this way (core.api.AutoSchema)."""
    paginator = StandardPagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    data = serializer_class(page, many=True, context=context or {}).data
    return paginator.get_paginated_response(data)
