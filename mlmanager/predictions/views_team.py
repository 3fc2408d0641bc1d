"""The team's prediction log: every answer of every model of the current team on one page,
filtered by model, date range, feedback and source (the per-model log is views.prediction_log),
with the API's filters (predictions.filters).
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse

from mlmanager.accounts.requests import AuthenticatedHttpRequest
from mlmanager.core.filters import page_filter
from mlmanager.core.htmx import render_page_or_partial
from mlmanager.core.pagination import page_of
from mlmanager.predictions import selectors
from mlmanager.predictions.filters import PredictionFilter
from mlmanager.predictions.forms import FeedbackForm
from mlmanager.predictions.models import Prediction

# The filters the page's form offers (a version number means little across models).
TEAM_LOG_FILTERS = ("model", "source", "has_feedback", "since", "until")


@login_required
def team_prediction_log(request: AuthenticatedHttpRequest) -> HttpResponse:
    team = request.team
    predictions = (
        selectors.predictions_for_caller(caller=request.caller).filter(team=team)
        if team
        else Prediction.objects.none()
    )
    log_filter = page_filter(
        request=request, queryset=predictions, filterset_class=PredictionFilter
    )
    page = page_of(request, log_filter.qs, long_list=True)
    form = log_filter.form
    return render_page_or_partial(
        request,
        page="predictions/team_log.html",
        partial="predictions/partials/_team_log_table.html",
        context={
            "page": page,
            "filter_fields": [form[name] for name in TEAM_LOG_FILTERS],
            "feedback_form": FeedbackForm(),
        },
    )
