"""Model pages: list, create in two steps from a dataset, the model page (metrics, plots,
leaderboard, importance, versions, runs; live progress while training), and its actions."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from mlmanager.accounts.requests import AuthenticatedHttpRequest
from mlmanager.core.access import Action
from mlmanager.core.errors import ApplicationError
from mlmanager.core.filters import page_filter
from mlmanager.core.htmx import render_page_or_partial
from mlmanager.core.pagination import page_of
from mlmanager.datasets.selectors import access_dataset, require_dataset_ready
from mlmanager.engine.training import TrainingError, infer_task
from mlmanager.engine.training.spec import CV_FOLDS, HOLDOUT_SHARE
from mlmanager.engine.vision import LEVELS
from mlmanager.machines import charts, selectors, services
from mlmanager.machines.filters import MachineFilter
from mlmanager.machines.forms import (
    CREATE_ONLY,
    CUSTOM_BUDGET,
    MachineEditForm,
    ModelChoicesForm,
    OutputsForm,
    ReviewForm,
)
from mlmanager.machines.models import Machine, ModelVersion, TrainingRun
from mlmanager.machines.services import vision
from mlmanager.machines.services.training import score_label
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
        selectors.machines_for_caller(caller=request.caller, team=team)
        if team
        else Machine.objects.none()
    )
    machines = page_filter(request=request, queryset=machines, filterset_class=MachineFilter).qs
    page = page_of(request, machines)
    _count_kept_versions(list(page))
    return render_page_or_partial(
        request,
        page="machines/list.html",
        partial="machines/partials/_table.html",
        context={
            "page": page,
            "any_training": any(getattr(m, "status", "") == Machine.Status.TRAINING for m in page),
        },
    )


def _count_kept_versions(machines: list[Machine]) -> None:
    """Sets `kept_versions` on each model (one query for the page): the status badge of a
    model whose last run was cancelled says how many versions it keeps, none active."""
    counts = dict(
        ModelVersion.objects.filter(machine__in=machines)
        .values_list("machine")
        .annotate(count=Count("pk"))
        .values_list("machine", "count")
    )
    for machine in machines:
        machine.kept_versions = counts.get(machine.pk, 0)  # type: ignore[attr-defined]


@login_required
def machine_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Step 1 (GET ?dataset=): pick the outputs. Step 2 (GET with outputs): review inputs —
    with the reason each other column is left out —, task and metric per output, and budget.
    POST creates the model and, unless the user chose "Create without training", starts its
    training: coming from "Train a model", one click trains."""
    params = request.POST if request.method == "POST" else request.GET
    dataset = access_dataset(caller=request.caller, id=params.get("dataset"), action=Action.CHANGE)
    require_dataset_ready(dataset=dataset)
    if vision.is_image_dataset(dataset):
        return _create_image_model(request, dataset=dataset)
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
        created, error = _create_from_form(request, form, dataset=dataset)
        if created is not None:
            return created
    chosen = set(form["inputs"].value() or [])
    rows = [{**row, "checked": row["name"] in chosen} for row in plan]
    return render(
        request,
        "machines/create_review.html",
        {"dataset": dataset, "form": form, "rows": rows, "outputs": outputs, "error": error},
    )


def _create_from_form(
    request: AuthenticatedHttpRequest, form: Any, *, dataset: Any, **arguments: Any
) -> tuple[HttpResponse | None, str]:
    """Create the model the valid `form` describes (and queue its training unless the user
    chose not to): the redirect to its page, or the message of a refusal to show."""
    train = form.cleaned_data["then"] != CREATE_ONLY
    try:
        machine = services.machine_create(
            caller=request.caller,
            dataset=dataset,
            train=train,
            **arguments,
            **form.service_arguments(),
        )
    except ApplicationError as failure:
        if not _is_user_error(failure):
            raise
        return None, failure.message
    messages.success(
        request,
        _("Model created. Its training is queued.")
        if train
        else _("Model created. Train it when you are ready."),
    )
    return redirect("machines:detail", machine_id=machine.pk), ""


def _create_image_model(request: AuthenticatedHttpRequest, *, dataset: Any) -> HttpResponse:
    """One step for a set of images: what it learns is fixed by the dataset (the image in,
    its label or mask out), so the page shows that and the levels, and asks for a budget."""
    output = vision.image_output(dataset)
    form = ModelChoicesForm(request.POST if request.method == "POST" else None)
    error = ""
    if request.method == "POST" and form.is_valid():
        created, error = _create_from_form(request, form, dataset=dataset, outputs=[output["name"]])
        if created is not None:
            return created
    return render(
        request,
        "machines/create_images.html",
        {
            "dataset": dataset,
            "form": form,
            "output": output,
            "levels": [_level_plan(number, output["task"]) for number in sorted(LEVELS)],
            "error": error,
        },
    )


def _level_plan(number: int, task: str) -> dict[str, Any]:
    """What an image model trains at a level: image size, epoch cap, members' architectures."""
    level = LEVELS[number]
    return {
        "level": number,
        "budget_s": level.budget_s,
        "image_size": level.image_size,
        "max_epochs": level.max_epochs,
        "members": [member.describe() for member in level.members(task)],
    }


def _image_level_plan(machine: Machine) -> dict[str, Any] | None:
    """The level an image model trains at (for a budget in seconds, the level it maps to)."""
    if not machine.is_image_model:
        return None
    number = vision.vision_level(machine.level, machine.time_budget_s)
    return _level_plan(number, machine.outputs[0]["task"])


def _version_display(version: ModelVersion | None) -> list[dict[str, Any]]:
    """Per output of the version: scalar metrics, its plot, the leaderboard and importance."""
    if version is None:
        return []
    if version.is_image_model:
        return [_image_output_display(output, version) for output in version.outputs]
    shown = []
    for output in version.outputs:
        metrics = output.get("metrics") or {}
        confusion = metrics.get("confusion_matrix")
        spread = metrics.get("predicted_vs_actual")
        labels, confusion_rows = charts.confusion_rows(confusion) if confusion else ([], [])
        shown.append(
            {
                "output": output,
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
                **charts.output_display(output, threshold=version.threshold),
            }
        )
    return shown


def _image_output_display(output: dict[str, Any], version: ModelVersion) -> dict[str, Any]:
    """What the model page shows of an image model's version: its members, the holdout metrics
    of the ensemble (accuracy, per-class precision and recall, the confusion matrix; or Dice
    and IoU per class) and each member's per-epoch curves."""
    metrics = output.get("metrics") or {}
    confusion = metrics.get("confusion_matrix")
    labels, confusion_rows = charts.confusion_rows(confusion) if confusion else ([], [])
    curves = output.get("curves")
    if curves is None and version.run is not None:  # the run kept them, the version did not
        curves = (version.run.score_curve or {}).get("curves")
    return {
        "output": output,
        "is_image": True,
        "metric_rows": [
            {"name": name, "value": value}
            for name, value in metrics.items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        ],
        "per_class": [
            {"name": name, **values}
            for name, values in (metrics.get("per_class") or {}).items()
            if isinstance(values, dict)
        ],
        "confusion_labels": labels,
        "confusion_rows": confusion_rows,
        "members": output.get("members") or [],
        "epoch_charts": charts.epoch_charts(curves, metric=str(output.get("metric") or "")),
    }


def _run_display(run: TrainingRun | None) -> dict[str, Any]:
    """What the run panel shows besides the job: the best score over time per output, what
    that score is (cross-validated or on a validation split) and why the holdout differs.
    An image model's run shows each member's curves per epoch instead."""
    if run is None:
        return {}
    curve = run.score_curve or {}
    if run.spec.get("kind") == "images":
        output: dict[str, Any] = next(iter(run.spec.get("outputs") or []), {})
        metric = str(output.get("metric", ""))
        return {
            "is_image": True,
            "metric": metric,
            "curves": [],
            "epoch_charts": charts.epoch_charts(curve.get("curves"), metric=metric),
        }
    eval_method = curve.get("eval_method")
    metrics = {output["name"]: output["metric"] for output in run.spec.get("outputs") or []}
    started = run.job.started_at
    # A running search's last step reaches now; a finished one's, the end of the run.
    until = ((run.job.finished_at or timezone.now()) - started).total_seconds() if started else None
    curves = []
    for name, points in (curve.get("outputs") or {}).items():
        metric = metrics.get(name, "")
        chart = charts.best_score_chart(
            points, metric=metric, score_title=score_label(metric, eval_method), until_s=until
        )
        if chart is not None:
            curves.append({"output": name, "chart": chart})
    first_metric = next(iter(metrics.values()), "")
    return {
        "score_label": score_label(first_metric, eval_method)
        if eval_method
        else _("score %(metric)s") % {"metric": first_metric},
        "eval_method": eval_method,
        "curves": curves,
        "cv_folds": CV_FOLDS,
        "holdout_percent": round(HOLDOUT_SHARE * 100),
    }


def _with_search_curves(
    shown: list[dict[str, Any]], version: ModelVersion | None
) -> list[dict[str, Any]]:
    """Each output of the version with the best score over time of the search that made it."""
    if version is None or version.run is None or version.is_image_model:
        return shown
    curves = {curve["output"]: curve["chart"] for curve in _run_display(version.run)["curves"]}
    return [{**item, "search_curve": curves.get(item["output"]["name"])} for item in shown]


@login_required
def machine_detail(request: AuthenticatedHttpRequest, machine_id: int) -> HttpResponse:
    machine = selectors.access_machine(caller=request.caller, id=machine_id)
    active_run = selectors.machine_active_run(machine=machine)
    version = machine.active_version
    versions = selectors.versions_for_machine(machine=machine)
    machine.kept_versions = len(versions)  # type: ignore[attr-defined]
    context = {
        "machine": machine,
        "active_run": active_run,
        "run_display": _run_display(active_run),
        "active_version": version,
        "version_outputs": _with_search_curves(_version_display(version), version),
        "accuracy": live_accuracy(machine=machine),
        "versions": versions,
        "runs": list(selectors.runs_for_machine(machine=machine)[:RUNS_SHOWN]),
        "left_out": selectors.left_out_columns(machine=machine),
        "level_plan": _image_level_plan(machine),
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
    machine = selectors.access_machine(caller=request.caller, id=machine_id, action=Action.CHANGE)
    _act(
        request,
        lambda: services.training_start(caller=request.caller, machine=machine),
        _("Training queued."),
    )
    return redirect("machines:detail", machine_id=machine.pk)


@login_required
@require_POST
def machine_edit(request: AuthenticatedHttpRequest, machine_id: int) -> HttpResponse:
    machine = selectors.access_machine(caller=request.caller, id=machine_id, action=Action.CHANGE)
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
    machine = selectors.access_machine(caller=request.caller, id=machine_id, action=Action.CHANGE)
    services.machine_delete(caller=request.caller, machine=machine)
    messages.success(request, _("%(name)s was deleted.") % {"name": machine.name})
    return redirect("machines:list")


@login_required
@require_POST
def version_activate(
    request: AuthenticatedHttpRequest, machine_id: int, number: int
) -> HttpResponse:
    machine = selectors.access_machine(caller=request.caller, id=machine_id, action=Action.CHANGE)
    version = selectors.access_version(machine=machine, number=number)
    services.version_activate(caller=request.caller, machine=machine, version=version)
    messages.success(request, _("Version %(number)s is now active.") % {"number": version.number})
    return redirect("machines:detail", machine_id=machine.pk)


@login_required
@require_POST
def run_cancel(request: AuthenticatedHttpRequest, run_id: int) -> HttpResponse:
    run = selectors.access_run(caller=request.caller, id=run_id, action=Action.CHANGE)
    _act(
        request,
        lambda: services.training_cancel(run=run),
        _("Cancellation requested. The best model found so far will be kept as a version."),
    )
    return redirect("machines:detail", machine_id=run.machine_id)
