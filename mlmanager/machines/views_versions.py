"""Model page actions on one version beyond activating it: the decision threshold.

Kept apart from views.py so the version's settings grow here without crowding the page views.
"""

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
from mlmanager.machines import selectors, services, views


@login_required
@require_POST
def version_threshold(
    request: AuthenticatedHttpRequest, machine_id: int, number: int
) -> HttpResponse:
    """Set the decision threshold from the model page's form (empty: back to the more probable
    class). An htmx request gets the model page's body back, with the new precision and recall;
    a plain form post is redirected to the page."""
    machine = selectors.access_machine(caller=request.caller, id=machine_id, action=Action.CHANGE)
    version = selectors.access_version(machine=machine, number=number)
    raw = request.POST.get("threshold", "").strip().replace(",", ".")
    try:
        try:
            threshold = float(raw) if raw else None
        except ValueError:
            raise ApplicationError(
                _("The threshold must be a number between 0 and 1 (both excluded)."),
                code="invalid_threshold",
            ) from None
        services.version_set_threshold(caller=request.caller, version=version, threshold=threshold)
    except ApplicationError as error:
        if error.status_code != 400:
            raise
        messages.error(request, error.message)
    else:
        if threshold is None:
            messages.success(request, _("Predictions choose the more probable class again."))
        else:
            messages.success(request, _("Decision threshold saved."))
    if getattr(request, "htmx", False):
        return views.machine_detail(request, machine_id=machine.pk)
    return redirect("machines:detail", machine_id=machine.pk)
