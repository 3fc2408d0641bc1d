"""The usage page: the current team's quotas, each limit with the current use, and today's
predictions, storage and running jobs. For every member of the team (reading, like the jobs
list); with billing off it shows the use with no limits."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render

from mlmanager.accounts.requests import AuthenticatedHttpRequest
from mlmanager.billing.services import quotas
from mlmanager.core.errors import NotFound


@login_required
def usage_page(request: AuthenticatedHttpRequest) -> HttpResponse:
    team = request.team
    if team is None:
        raise NotFound()
    usage = quotas.team_usage(team_id=team.pk)
    return render(request, "billing/usage.html", {"team": team, "usage": usage})
