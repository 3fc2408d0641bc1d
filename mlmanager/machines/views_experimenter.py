"""The model page's Experimenter form (machines.services.experimenter)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from mlmanager.accounts.requests import AuthenticatedHttpRequest
from mlmanager.core.access import Action
from mlmanager.core.errors import ApplicationError
from mlmanager.machines import selectors
from mlmanager.machines.services import experimenter


@login_required
@require_POST
def machine_experimenter(request: AuthenticatedHttpRequest, machine_id: int) -> HttpResponse:
    machine = selectors.access_machine(caller=request.caller, id=machine_id, action=Action.CHANGE)
    try:
        if request.POST.get("action") == "delete":
            experimenter.experimenter_delete(caller=request.caller, machine=machine)
            messages.success(request, _("The rules were removed."))
        else:
            rules = dict(
                zip(request.POST.getlist("output"), request.POST.getlist("rule"), strict=False)
            )
            experimenter.experimenter_set(caller=request.caller, machine=machine, rules=rules)
            messages.success(request, _("Rules saved: they answer until the model has a version."))
    except ApplicationError as error:
        if error.status_code in (403, 404) and error.code != "no_rules":
            raise
        messages.error(request, error.message)
    return redirect("machines:detail", machine_id=machine.pk)
