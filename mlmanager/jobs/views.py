"""Jobs pages: the team's jobs (refreshing while any runs) and one job with its log."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from mlmanager.accounts.requests import AuthenticatedHttpRequest
from mlmanager.core.access import Action
from mlmanager.core.filters import page_filter
from mlmanager.core.htmx import render_page_or_partial
from mlmanager.core.pagination import page_of
from mlmanager.jobs import selectors, services
from mlmanager.jobs.filters import JobFilter
from mlmanager.jobs.models import Job


@login_required
def job_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    team = request.team
    jobs = (
        selectors.jobs_for_caller(caller=request.caller, team=team) if team else Job.objects.none()
    )
    jobs = page_filter(request=request, queryset=jobs, filterset_class=JobFilter).qs
    page = page_of(request, jobs, long_list=True)
    page.object_list = list(page.object_list)
    selectors.attach_subjects(page.object_list)
    return render_page_or_partial(
        request,
        page="jobs/list.html",
        partial="jobs/partials/_table.html",
        context={"page": page, "any_active": any(not job.is_finished for job in page)},
    )


@login_required
def job_detail(request: AuthenticatedHttpRequest, job_id: int) -> HttpResponse:
    job = selectors.access_job(caller=request.caller, id=job_id)
    selectors.attach_subjects([job])
    return render_page_or_partial(
        request, page="jobs/detail.html", partial="jobs/partials/_job.html", context={"job": job}
    )


@login_required
@require_POST
def job_cancel(request: AuthenticatedHttpRequest, job_id: int) -> HttpResponse:
    job = selectors.access_job(caller=request.caller, id=job_id, action=Action.CHANGE)
    services.job_cancel(job=job)
    messages.success(request, _("Cancellation requested."))
    next_url = request.POST.get("next", "")
    if next_url.startswith("/") and not next_url.startswith("//"):
        return redirect(next_url)
    return redirect("jobs:detail", job_id=job.pk)
