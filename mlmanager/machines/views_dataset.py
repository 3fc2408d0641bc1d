"""Model page: point the model at another dataset of its team with compatible columns."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from mlmanager.accounts.requests import AuthenticatedHttpRequest
from mlmanager.core.access import Action
from mlmanager.core.errors import ApplicationError
from mlmanager.datasets.selectors import access_dataset_of_team, ready_datasets_for_caller
from mlmanager.machines import selectors, services
from mlmanager.machines.services.machines import dataset_compatibility

# Datasets the form offers, newest first (a team with more finds the others by id in the API).
DATASETS_LISTED = 100


@login_required
def machine_dataset(request: AuthenticatedHttpRequest, machine_id: int) -> HttpResponse:
    """The form (htmx partial of the model page): the team's ready datasets of the model's
    kind, each with what keeps it from fitting the model, if anything."""
    machine = selectors.access_machine(caller=request.caller, id=machine_id)
    datasets = ready_datasets_for_caller(caller=request.caller, team=machine.team)
    if machine.dataset_id is not None:
        datasets = datasets.exclude(pk=machine.dataset_id)
    choices = []
    for dataset in datasets[:DATASETS_LISTED]:
        if dataset.is_images != machine.is_image_model:
            continue
        problems = dataset_compatibility(machine=machine, dataset=dataset)
        fits = not problems["missing_columns"] and not problems["mistyped_columns"]
        choices.append({"dataset": dataset, "fits": fits, "problems": problems})
    return render(
        request, "machines/partials/_dataset.html", {"machine": machine, "choices": choices}
    )


@login_required
@require_POST
def machine_dataset_change(request: AuthenticatedHttpRequest, machine_id: int) -> HttpResponse:
    machine = selectors.access_machine(caller=request.caller, id=machine_id, action=Action.CHANGE)
    dataset = access_dataset_of_team(
        caller=request.caller,
        id=request.POST.get("dataset"),
        team_id=machine.team_id,
        action=Action.CHANGE,
    )
    try:
        services.machine_update(machine=machine, dataset=dataset, caller=request.caller)
    except ApplicationError as error:
        if error.status_code in (403, 404):
            raise
        messages.error(request, error.message)
    else:
        messages.success(
            request,
            _("The model now learns from %(name)s (from its next training).")
            % {"name": dataset.name},
        )
    return redirect("machines:detail", machine_id=machine.pk)
