"""The team's prediction log: every answer of every model of the current team on one page,
filtered by model, date range, feedback and source (the per-model log is views.prediction_log).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import django_filters
from django import forms
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from mlmanager.core.htmx import render_page_or_partial
from mlmanager.core.requests import AuthenticatedHttpRequest
from mlmanager.machines.models import Machine
from mlmanager.predictions import selectors
from mlmanager.predictions.forms import FeedbackForm
from mlmanager.predictions.models import Prediction
from mlmanager.predictions.views import LOG_PAGE_SIZE


def _team_machines(request: Any) -> QuerySet[Machine]:
    """The choices of the model filter: the current team's models, names only."""
    team = getattr(request, "team", None)
    if team is None:
        return Machine.objects.none()
    return (
        Machine.objects.for_user(request.user)
        .filter(team=team)
        .only("pk", "name")
        .order_by("name", "pk")
    )


def _start_of_day(day: dt.date) -> dt.datetime | None:
    """Midnight of `day` in the user's time zone (activated per request): dates are the user's
    days, and comparing created_at with a moment keeps the (team, -created_at) index usable.
    None when that moment is past what a datetime holds in UTC (the year 1 east of UTC)."""
    moment = timezone.make_aware(dt.datetime.combine(day, dt.time.min))
    try:
        moment.astimezone(dt.UTC)
    except OverflowError:
        return None
    return moment


class TeamLogFilter(django_filters.FilterSet):
    """The page's filters. Unlike the API's (core.filters), a value that does not fit, such as
    another team's model, is ignored rather than refused: the form shows it as not chosen."""

    model = django_filters.ModelChoiceFilter(
        label=_("Model"),
        field_name="machine",
        queryset=_team_machines,
        empty_label=_("any"),
    )
    source = django_filters.ChoiceFilter(
        label=_("Source"), choices=Prediction.Source.choices, empty_label=_("any")
    )
    feedback = django_filters.ChoiceFilter(
        label=_("Feedback"),
        choices=[("yes", _("given")), ("no", _("not given"))],
        empty_label=_("any"),
        method="filter_feedback",
    )
    since = django_filters.DateFilter(
        label=_("From"),
        method="filter_since",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    until = django_filters.DateFilter(
        label=_("To"),
        method="filter_until",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    class Meta:
        model = Prediction
        fields: list[str] = []

    def filter_feedback(
        self, queryset: QuerySet[Prediction], name: str, value: str
    ) -> QuerySet[Prediction]:
        return queryset.filter(feedback__isnull=value != "yes")

    def filter_since(
        self, queryset: QuerySet[Prediction], name: str, value: dt.date
    ) -> QuerySet[Prediction]:
        start = _start_of_day(value)
        return queryset if start is None else queryset.filter(created_at__gte=start)

    def filter_until(
        self, queryset: QuerySet[Prediction], name: str, value: dt.date
    ) -> QuerySet[Prediction]:
        # Through the whole last day: before the next midnight.
        end = _start_of_day(value + dt.timedelta(days=1)) if value < dt.date.max else None
        return queryset if end is None else queryset.filter(created_at__lt=end)


@login_required
def team_prediction_log(request: AuthenticatedHttpRequest) -> HttpResponse:
    team = request.team
    predictions = (
        selectors.predictions_for_user(user=request.user).filter(team=team)
        if team
        else Prediction.objects.none()
    )
    log_filter = TeamLogFilter(request.GET or None, queryset=predictions, request=request)
    page = Paginator(log_filter.qs, LOG_PAGE_SIZE).get_page(request.GET.get("page"))
    # The pager keeps the filters.
    query = request.GET.copy()
    query.pop("page", None)
    return render_page_or_partial(
        request,
        page="predictions/team_log.html",
        partial="predictions/partials/_team_log_table.html",
        context={
            "page": page,
            "filter_form": log_filter.form,
            "filter_query": query.urlencode(),
            "feedback_form": FeedbackForm(),
        },
    )
