"""Consulting pages: the team's requests, the new-request form, a request with its timeline
and the step buttons, the consultants' queue, and the attachment's download."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import QuerySet
from django.http import FileResponse, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from mlmanager.accounts.caller import Caller
from mlmanager.accounts.requests import AuthenticatedHttpRequest
from mlmanager.consulting import attachments, selectors, services
from mlmanager.consulting.forms import ConsultingRequestForm, ContractForm
from mlmanager.core.errors import ApplicationError, PermissionDenied
from mlmanager.core.pagination import page_of
from mlmanager.core.uploads import raise_if_upload_too_large


def _money() -> dict[str, Any]:
    """What the pages say about money: the currency, and whether billing is on (with it off,
    accepting a contract holds nothing and finishing pays nothing)."""
    return {
        "currency": settings.MLMANAGER_BILLING_CURRENCY,
        "billing": settings.MLMANAGER_BILLING,
    }


@login_required
def request_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    team = request.team
    requests: Sequence[Any] | QuerySet[Any] = (
        selectors.requests_for_team(caller=request.caller, team=team) if team is not None else []
    )
    return render(
        request,
        "consulting/list.html",
        {
            **_money(),
            "page": page_of(request, requests),
            "is_consultant": selectors.is_consultant(caller=request.caller),
        },
    )


@login_required
def request_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    team = request.team
    models = selectors.team_models(team_id=team.pk) if team is not None else []
    form = ConsultingRequestForm(models=models)
    error = ""
    if request.method == "POST":
        try:
            # Reading request.POST streams the body; the size handler may refuse it.
            form = ConsultingRequestForm(request.POST, request.FILES, models=models)
            raise_if_upload_too_large(request)
            if form.is_valid():
                consulting_request = services.consulting_request_create(
                    caller=request.caller,
                    category=form.cleaned_data["category"],
                    description=form.cleaned_data["description"],
                    team_id=team.pk if team is not None else None,
                    model_id=form.cleaned_data["model"],
                    attachment=form.cleaned_data["attachment"],
                )
                messages.success(request, _("Your request was sent to the consultants."))
                return redirect("consulting:detail", request_id=consulting_request.pk)
        except ApplicationError as failure:
            if failure.status_code in (403, 404) and failure.code != "model_not_found":
                raise
            error = failure.message
    return render(request, "consulting/create.html", {"form": form, "error": error})


@login_required
def request_queue(request: AuthenticatedHttpRequest) -> HttpResponse:
    if not selectors.is_consultant(caller=request.caller):
        raise PermissionDenied(
            _("Only the platform's consultants have a queue."), code="not_consultant"
        )
    return render(
        request,
        "consulting/queue.html",
        {**_money(), "page": page_of(request, selectors.consultant_queue(caller=request.caller))},
    )


@login_required
def request_detail(request: AuthenticatedHttpRequest, request_id: int) -> HttpResponse:
    consulting_request = selectors.access_consulting_request(caller=request.caller, id=request_id)
    actions = selectors.available_actions(
        caller=request.caller, consulting_request=consulting_request
    )
    return render(
        request,
        "consulting/detail.html",
        {
            **_money(),
            "consulting_request": consulting_request,
            "actions": actions,
            "contract_form": ContractForm() if "contract" in actions else None,
            "timeline": selectors.timeline(consulting_request),
            "can_download": consulting_request.attachment_name
            and (
                consulting_request.caller_side == selectors.TEAM_SIDE  # type: ignore[attr-defined]
                or consulting_request.consultant_id == request.user.pk
            ),
        },
    )


@login_required
def request_attachment(request: AuthenticatedHttpRequest, request_id: int) -> FileResponse:
    consulting_request = selectors.access_consulting_attachment(
        caller=request.caller, id=request_id
    )
    return attachments.attachment_response(
        name=consulting_request.attachment_name,
        filename=consulting_request.attachment_filename,
    )


def _step(
    request: AuthenticatedHttpRequest,
    request_id: int,
    step: Callable[..., Any],
    done: str,
    **values: Any,
) -> HttpResponse:
    """Take a step from the detail page: its refusal (a wrong state, not enough credit) is
    shown there as a message; a request the caller cannot see stays "not found"."""
    caller: Caller = request.caller
    consulting_request = selectors.access_consulting_request(caller=caller, id=request_id)
    try:
        step(caller=caller, consulting_request=consulting_request, **values)
    except ApplicationError as failure:
        if failure.status_code == 404:
            raise
        messages.error(request, failure.message)
    else:
        messages.success(request, done)
    return redirect("consulting:detail", request_id=request_id)


@login_required
@require_POST
def request_approve(request: AuthenticatedHttpRequest, request_id: int) -> HttpResponse:
    return _step(
        request,
        request_id,
        services.consulting_request_approve,
        _("You took this request: propose a contract."),
    )


@login_required
@require_POST
def request_contract(request: AuthenticatedHttpRequest, request_id: int) -> HttpResponse:
    form = ContractForm(request.POST)
    if not form.is_valid():
        consulting_request = selectors.access_consulting_request(
            caller=request.caller, id=request_id
        )
        return render(
            request,
            "consulting/detail.html",
            {
                "consulting_request": consulting_request,
                "actions": selectors.available_actions(
                    caller=request.caller, consulting_request=consulting_request
                ),
                "contract_form": form,
                "timeline": selectors.timeline(consulting_request),
            },
            status=400,
        )
    return _step(
        request,
        request_id,
        services.consulting_request_contract,
        _("The contract was sent to the team."),
        **form.cleaned_data,
    )


@login_required
@require_POST
def request_accept(request: AuthenticatedHttpRequest, request_id: int) -> HttpResponse:
    return _step(
        request,
        request_id,
        services.consulting_request_accept,
        _("You accepted the contract: the consultant starts the work."),
    )


@login_required
@require_POST
def request_finish(request: AuthenticatedHttpRequest, request_id: int) -> HttpResponse:
    return _step(
        request, request_id, services.consulting_request_finish, _("The request is finished.")
    )


@login_required
@require_POST
def request_cancel(request: AuthenticatedHttpRequest, request_id: int) -> HttpResponse:
    return _step(
        request, request_id, services.consulting_request_cancel, _("The request was cancelled.")
    )
