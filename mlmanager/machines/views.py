"""Model pages: list, create in two steps from a dataset, the model page (metrics, plots,
leaderboard, importance, versions, runs; live progress while training), and its actions."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from mlmanager.core.access import Action
from mlmanager.core.errors import ApplicationError
from mlmanager.core.htmx import render_page_or_partial
from mlmanager.core.requests import AuthenticatedHttpRequest
from mlmanager.datasets.selectors import access_dataset
from mlmanager.engine.training import TrainingError, infer_task
from mlmanager.machines import charts, selectors, services
from mlmanager.machines.forms import CUSTOM_BUDGET, MachineEditForm, OutputsForm, ReviewForm
from mlmanager.machines.models import Machine, ModelVersion
from mlmanager.predictions.selectors import live_accuracy

RUNS_SHOWN = 20
LEADERBOARD_SHOWN = 20


def _is_user_error(error: ApplicationError) -> bool:
    """Errors a form shows next to its fields; 403 and 404 go to the error page."""
    return error.status_code not in (403, 404)


@login_required
def machine_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    team = request.team
    machines = (
        selectors.machines_for_user(user=request.user, team=team)
        if team
        else Machine.objects.none()
    )
    page = Paginator(machines, 25).get_page(request.GET.get("page"))
    return render_page_or_partial(
        request,
        page="machines/list.html",
        partial="machines/partials/_table.html",
        context={
            "page": page,
            "any_training": any(getattr(m, "status", "") == Machine.Status.TRAINING for m in page),
        },
    )


@login_required
def machine_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Step 1 (GET ?dataset=): pick the outputs. Step 2 (GET with outputs): review inputs —
    with the reason each other column is left out —, task and metric per output, and budget.
    POST creates the model."""
    params = request.POST if request.method == "POST" else request.GET
    dataset = access_dataset(user=request.user, id=params.get("dataset"), action=Action.CHANGE)
    if dataset.status != dataset.Status.READY:
        raise ApplicationError(_("Wait until the dataset is ready."), code="dataset_not_ready")
    candidates = selectors.output_candidates(dataset=dataset)
    outputs_form = OutputsForm(
        params if "outputs" in params else None,
        columns=candidates,
        initial={"outputs": [c["name"] for c in candidates if c.get("role") == "output_candidate"]},
    )
    step_error = ""
    if outputs_form.is_bound and outputs_form.is_valid():
        output_names = outputs_form.cleaned_data["outputs"]
        columns = {column["name"]: column for column in dataset.columns}
        try:
            outputs = [{"name": n, "task": infer_task(columns[n])} for n in output_names]
        except TrainingError as error:
            step_error = error.message
        else:
            return _create_review(request, dataset=dataset, outputs=outputs)
    return render(
        request,
        "machines/create_outputs.html",
        {"dataset": dataset, "form": outputs_form, "error": step_error},
    )


def _create_review(
    request: AuthenticatedHttpRequest, *, dataset: Any, outputs: list[dict[str, str]]
) -> HttpResponse:
    output_names = [output["name"] for output in outputs]
    plan = selectors.input_plan(dataset=dataset, outputs=output_names)
    form = ReviewForm(
        request.POST if request.method == "POST" else None,
        outputs=outputs,
        input_columns=[row["name"] for row in plan],
        initial={"inputs": [row["name"] for row in plan if row["included"]]},
    )
    error = ""
    if request.method == "POST" and form.is_valid():
        try:
            machine = services.machine_create(
                user=request.user, dataset=dataset, **form.service_arguments()
            )
        except ApplicationError as failure:
            if not _is_user_error(failure):
                raise
            error = failure.message
        else:
            messages.success(request, _("Model created. Train it when you are ready."))
            return redirect("machines:detail", machine_id=machine.pk)
    chosen = set(form["inputs"].value() or [])
    rows = [{**row, "checked": row["name"] in chosen} for row in plan]
    return render(
        request,
        "machines/create_review.html",
        {"dataset": dataset, "form": form, "rows": rows, "outputs": outputs, "error": error},
    )


def _version_display(version: ModelVersion | None) -> list[dict[str, Any]]:
    """Per output of the version: scalar metrics, its plot, the leaderboard and importance."""
    if version is None:
        return []
    shown = []
    for output in version.outputs:
        metrics = output.get("metrics") or {}
        confusion = metrics.get("confusion_matrix")
        spread = metrics.get("predicted_vs_actual")
        labels, confusion_rows = charts.confusion_rows(confusion) if confusion else ([], [])
        shown.append(
            {
                "output": output,
                "scores": [
                    (name, value)
                    for name, value in metrics.items()
                    if isinstance(value, int | float)
                    and not isinstance(value, bool)
                    and name != "holdout_rows"
                ],
                "holdout_rows": metrics.get("holdout_rows"),
                "confusion_labels": labels,
                "confusion_rows": confusion_rows,
                "scatter": charts.scatter_chart(
                    spread.get("actual") or [], spread.get("predicted") or []
                )
                if spread
                else None,
                "leaderboard": [
                    {**entry, "config_text": json.dumps(entry.get("config") or {}, sort_keys=True)}
                    for entry in (output.get("leaderboard") or [])[:LEADERBOARD_SHOWN]
                ],
                "importance": charts.importance_chart(output.get("feature_importance") or []),
            }
        )
    return shown


@login_required
def machine_detail(request: AuthenticatedHttpRequest, machine_id: int) -> HttpResponse:
    machine = selectors.access_machine(user=request.user, id=machine_id)
    active_run = selectors.machine_active_run(machine=machine)
    version = machine.active_version
    context = {
        "machine": machine,
        "active_run": active_run,
        "active_version": version,
        "version_outputs": _version_display(version),
        "accuracy": live_accuracy(machine=machine),
        "versions": selectors.versions_for_machine(machine=machine),
        "runs": list(selectors.runs_for_machine(machine=machine)[:RUNS_SHOWN]),
        "left_out": [
            row
            for row in (
                selectors.input_plan(
                    dataset=machine.dataset, outputs=machine.output_names, inputs=machine.inputs
                )
                if machine.dataset
                else []
            )
            if not row["included"]
        ],
        "edit_form": MachineEditForm(
            initial={
                "name": machine.name,
                "description": machine.description,
                "level": str(machine.level) if machine.level else CUSTOM_BUDGET,
                "time_budget_s": machine.time_budget_s,
            }
        ),
    }
    return render_page_or_partial(
        request,
        page="machines/detail.html",
        partial="machines/partials/_body.html",
        context=context,
    )


def _act(request: AuthenticatedHttpRequest, action: Any, success: str) -> None:
    """Runs a page action; a refusal the user can fix (409 already training, 400) becomes a
    message on the model page rather than an error page."""
    try:
        action()
    except ApplicationError as error:
        if not _is_user_error(error):
            raise
        messages.error(request, error.message)
    else:
        messages.success(request, success)


@login_required
@require_POST
def machine_train(request: AuthenticatedHttpRequest, machine_id: int) -> HttpResponse:
    machine = selectors.access_machine(user=request.user, id=machine_id, action=Action.CHANGE)
    _act(
        request,
        lambda: services.training_start(user=request.user, machine=machine),
        _("Training queued."),
    )
    return redirect("machines:detail", machine_id=machine.pk)


@login_required
@require_POST
def machine_edit(request: AuthenticatedHttpRequest, machine_id: int) -> HttpResponse:
    machine = selectors.access_machine(user=request.user, id=machine_id, action=Action.CHANGE)
    form = MachineEditForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("The name cannot be empty."))
        return redirect("machines:detail", machine_id=machine.pk)
    arguments = form.service_arguments()
    budget_unchanged = arguments["level"] == machine.level and (
        machine.level is not None or arguments["time_budget_s"] == machine.time_budget_s
    )
    if budget_unchanged:  # no need to check the dataset again for a new name
        del arguments["level"], arguments["time_budget_s"]
    _act(request, lambda: services.machine_update(machine=machine, **arguments), _("Saved."))
    return redirect("machines:detail", machine_id=machine.pk)


@login_required
@require_POST
def machine_delete(request: AuthenticatedHttpRequest, machine_id: int) -> HttpResponse:
    machine = selectors.access_machine(user=request.user, id=machine_id, action=Action.CHANGE)
    services.machine_delete(machine=machine)
    messages.success(request, _("%(name)s was deleted.") % {"name": machine.name})
    return redirect("machines:list")


@login_required
@require_POST
def version_activate(
    request: AuthenticatedHttpRequest, machine_id: int, number: int
) -> HttpResponse:
    machine = selectors.access_machine(user=request.user, id=machine_id, action=Action.CHANGE)
    version = selectors.access_version(machine=machine, number=number)
    services.version_activate(machine=machine, version=version)
    messages.success(request, _("Version %(number)s is now active.") % {"number": version.number})
    return redirect("machines:detail", machine_id=machine.pk)


@login_required
@require_POST
def run_cancel(request: AuthenticatedHttpRequest, run_id: int) -> HttpResponse:
    run = selectors.access_run(user=request.user, id=run_id, action=Action.CHANGE)
    _act(
        request,
        lambda: services.training_cancel(run=run),
        _("Cancellation requested. The best model found so far will be kept as a version."),
    )
    return redirect("machines:detail", machine_id=run.machine_id)
