"""The audit log page: the current team's events, for its owners and admins; and the same
events, filtered alike, as a CSV file."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any

from django.contrib.auth.decorators import login_required
from django.db.models import QuerySet
from django.http import HttpResponse, QueryDict, StreamingHttpResponse
from django.utils import timezone

from mlmanager.accounts.requests import AuthenticatedHttpRequest
from mlmanager.audit import selectors
from mlmanager.audit.filters import AuditEventFilter
from mlmanager.audit.models import AuditEvent
from mlmanager.core.errors import NotFound
from mlmanager.core.htmx import render_page_or_partial
from mlmanager.core.pagination import page_of


def _given(query: QueryDict) -> QueryDict:
    """The filters given: the form's fields left empty mean "any", but the shared FilterSet
    refuses an empty parameter (an API client's mistake), so the page drops them."""
    given = QueryDict(mutable=True)
    for name, values in query.lists():
        kept = [value for value in values if value != ""]
        if kept and name != "page":
            given.setlist(name, kept)
    return given


def _filtered(request: AuthenticatedHttpRequest) -> tuple[AuditEventFilter, QuerySet[AuditEvent]]:
    """The current team's events (owners and admins only) narrowed by the query's filters. An
    invalid filter gives no rows (never the unfiltered log, which would look like the filter's
    answer); the form shows its error."""
    team = request.team
    if team is None:
        raise NotFound()
    events = selectors.audit_events_for_team(caller=request.caller, team=team)
    event_filter = AuditEventFilter(_given(request.GET), queryset=events, request=request)
    return event_filter, event_filter.qs if event_filter.is_valid() else events.none()


@login_required
def event_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    event_filter, shown = _filtered(request)
    query = _given(request.GET)
    page = page_of(request, shown, long_list=True)
    return render_page_or_partial(
        request,
        page="audit/event_list.html",
        partial="audit/partials/_table.html",
        context={
            "page": page,
            "team": request.team,
            "filter_form": event_filter.form,
            "filter_query": query.urlencode(),
        },
    )


CSV_COLUMNS = [
    "time",
    "action",
    "actor_email",
    "actor_id",
    "credential",
    "credential_id",
    "address",
    "target_type",
    "target_id",
    "target",
    "changes",
    "details",
]


class _Echo:
    """A file for csv.writer that hands each line back instead of keeping it."""

    def write(self, value: str) -> str:
        return value


def _cell(value: Any) -> Any:
    """A spreadsheet runs text starting with = + - @ as a formula: names come from users (a
    dataset called "=HYPERLINK(...)"), so such text is written with a leading apostrophe."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return f"'{value}"
    return value


def _csv_lines(events: QuerySet[AuditEvent]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    # iterator(): the whole log of a busy team is never held in memory at once.
    for event in events.iterator(chunk_size=2000):
        row = [
            timezone.localtime(event.created_at).isoformat(),
            event.action,
            event.actor_email,
            event.actor_id,
            event.credential,
            event.credential_id,
            event.address,
            event.target_type,
            event.target_id,
            event.target_repr,
            json.dumps(event.changes, ensure_ascii=False) if event.changes else "",
            json.dumps(event.details, ensure_ascii=False) if event.details else "",
        ]
        yield writer.writerow([_cell(value) for value in row])


@login_required
def event_export(request: AuthenticatedHttpRequest) -> StreamingHttpResponse:
    """The events the page's filters select, every page of them, as CSV (times with the
    user's offset, ISO 8601)."""
    _filter, events = _filtered(request)
    response = StreamingHttpResponse(_csv_lines(events), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="audit-log.csv"'
    return response
