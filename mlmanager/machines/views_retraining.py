"""Model page actions for aliases (set, move, delete) and the retraining policy; the sections
themselves are drawn by the `model_retraining` template tags."""

from __future__ import annotations

import datetime

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
from mlmanager.machines.services import aliases, retraining


def _user_error(request: AuthenticatedHttpRequest, error: ApplicationError) -> None:
    if error.status_code in (403, 404) and error.code != "alias_not_found":
        raise error
    messages.error(request, error.message)


@login_required
@require_POST
def alias_change(request: AuthenticatedHttpRequest, machine_id: int) -> HttpResponse:
    """The versions list's alias form: `action` "set" (alias, version) or "delete" (alias)."""
    machine = selectors.access_machine(caller=request.caller, id=machine_id, action=Action.CHANGE)
    name = request.POST.get("alias", "").strip()
    try:
        if request.POST.get("action") == "delete":
            aliases.alias_delete(caller=request.caller, machine=machine, alias=name)
            messages.success(request, _("Alias “%(alias)s” removed.") % {"alias": name})
        else:
            aliases.alias_name_check(name)
            version = selectors.access_version(machine=machine, number=request.POST.get("version"))
            aliases.alias_set(
                caller=request.caller,
                machine=machine,
                alias=name,
                version=version,
                reason=request.POST.get("reason", ""),
            )
            messages.success(
                request,
                _("“%(alias)s” now names v%(number)s.") % {"alias": name, "number": version.number},
            )
    except ApplicationError as error:
        _user_error(request, error)
    return redirect("machines:detail", machine_id=machine.pk)


@login_required
@require_POST
def retraining_change(request: AuthenticatedHttpRequest, machine_id: int) -> HttpResponse:
    """The Retraining section's form."""
    machine = selectors.access_machine(caller=request.caller, id=machine_id, action=Action.CHANGE)
    data = request.POST
    try:
        try:
            at_time = datetime.datetime.strptime(data.get("at_time", "03:00"), "%H:%M").time()
        except ValueError:
            raise ApplicationError(
                _("at_time must be a time of day, HH:MM."), code="invalid_retraining"
            ) from None
        rows = data.get("after_new_rows", "").strip()
        weekday = data.get("weekday", "0").strip()
        if not weekday.isdigit() or (rows and not rows.isdigit()):
            raise ApplicationError(
                _("weekday and the number of new rows must be whole numbers."),
                code="invalid_retraining",
            )
        retraining.retraining_policy_update(
            caller=request.caller,
            machine=machine,
            enabled=data.get("enabled") == "on",
            schedule=data.get("schedule", "off"),
            at_time=at_time,
            weekday=int(weekday),
            time_zone=data.get("time_zone", "UTC").strip(),
            after_new_rows=int(rows) if rows else None,
        )
    except ApplicationError as error:
        _user_error(request, error)
    else:
        messages.success(request, _("Retraining settings saved."))
    return redirect("machines:detail", machine_id=machine.pk)
