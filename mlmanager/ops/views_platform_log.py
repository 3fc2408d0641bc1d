"""The platform log pages, for staff: every process's warnings and errors, newest first, with
filters; one entry with its traceback. Anyone else gets 404 (ops.selectors)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, QueryDict
from django.shortcuts import render
from django.views.decorators.http import require_safe

from mlmanager.accounts.requests import AuthenticatedHttpRequest
from mlmanager.core.formatting import format_datetime
from mlmanager.core.htmx import render_page_or_partial
from mlmanager.core.pagination import page_of
from mlmanager.ops import selectors
from mlmanager.ops.filters import PlatformLogFilter


def _given(query: QueryDict) -> QueryDict:
    """The filters given: the form's fields left empty mean "any", which the strict FilterSet
    would refuse as an empty parameter, so the page drops them."""
    given = QueryDict(mutable=True)
    for name, values in query.lists():
        kept = [value for value in values if value != ""]
        if kept and name != "page":
            given.setlist(name, kept)
    return given


@login_required
@require_safe
def platform_log(request: AuthenticatedHttpRequest) -> HttpResponse:
    entries = selectors.platform_log_entries(caller=request.caller)
    query = _given(request.GET)
    log_filter = PlatformLogFilter(query, queryset=entries, request=request)
    # An invalid filter shows no rows, never the unfiltered log as if it were the answer.
    shown = log_filter.qs if log_filter.is_valid() else entries.none()
    page = page_of(request, shown, long_list=True)
    for entry in page:
        # To the second, in the reader's zone and format: entries come seconds apart.
        entry.shown_at = format_datetime(entry.created_at, seconds=True)  # type: ignore[attr-defined]
    return render_page_or_partial(
        request,
        page="ops/platform_log.html",
        partial="ops/partials/_platform_log_table.html",
        context={
            "page": page,
            "filter_form": log_filter.form,
            "filter_query": query.urlencode(),
            "retention_days": settings.MLMANAGER_PLATFORM_LOG_RETENTION_DAYS,
        },
    )


@login_required
@require_safe
def platform_log_entry(request: AuthenticatedHttpRequest, entry_id: int) -> HttpResponse:
    entry = selectors.access_platform_log_entry(caller=request.caller, entry_id=entry_id)
    return render(
        request,
        "ops/platform_log_entry.html",
        {"entry": entry, "shown_at": format_datetime(entry.created_at, seconds=True)},
    )
