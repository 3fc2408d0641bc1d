"""Run pages: a model's run history (with re-run buttons and artifact downloads), and runs
compared side by side (parameters, holdout metrics, the search's score curves overlaid)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from mlmanager.accounts.requests import AuthenticatedHttpRequest
from mlmanager.core.access import Action
from mlmanager.core.errors import ApplicationError
from mlmanager.core.pagination import page_of
from mlmanager.machines import charts_runs, selectors, selectors_runs, services
from mlmanager.machines.api_runs import artifact_response
from mlmanager.machines.services.run_artifacts import CONTENT_TYPES
from mlmanager.machines.services.training import score_label


@login_required
@require_GET
def runs_page(request: AuthenticatedHttpRequest, machine_id: int) -> HttpResponse:
    """The model's runs, newest first: what each was asked, how it went, what it made; tick
    two or more to compare them."""
    machine = selectors.access_machine(caller=request.caller, id=machine_id)
    page = page_of(request, selectors_runs.runs_history(machine=machine))
    return render(
        request,
        "machines/runs.html",
        {
            "machine": machine,
            "page": page,
            "entries": [{"run": run, **selectors_runs.run_entry(run)} for run in page.object_list],
            "artifact_names": list(CONTENT_TYPES),
            "compare_max": selectors_runs.COMPARE_MAX_RUNS,
        },
    )


def _ids_from_query(request: AuthenticatedHttpRequest) -> str:
    """The compare form sends `ids` once per ticked run; a link may send `ids=1,2`."""
    return ",".join(value for value in request.GET.getlist("ids") if value)


@login_required
@require_GET
def runs_compare_page(request: AuthenticatedHttpRequest) -> HttpResponse:
    back = request.GET.get("model", "")
    try:
        ids = selectors_runs.parse_run_ids(_ids_from_query(request))
    except ApplicationError as error:
        return render(
            request,
            "machines/runs_compare.html",
            {"error": error.message, "back_model": back if back.isdigit() else ""},
            status=error.status_code,
        )
    runs = selectors_runs.runs_to_compare(caller=request.caller, ids=ids)
    comparison = selectors_runs.compare_runs(runs)
    return render(
        request,
        "machines/runs_compare.html",
        {
            "comparison": comparison,
            "columns": _columns(runs, comparison["runs"]),
            "charts": _charts(comparison, ids=ids),
            "back_model": runs[0].machine_id,
        },
    )


def _columns(runs: list[Any], entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One column per run: its entry, the run, and its colour in the overlaid charts."""
    return [
        {**entry, "run": run, "css": charts_runs.run_css(index)}
        for index, (run, entry) in enumerate(zip(runs, entries, strict=True))
    ]


def _charts(comparison: dict[str, Any], *, ids: list[int]) -> list[dict[str, Any]]:
    """Per output, the runs' best-score curves overlaid in one chart."""
    metrics = {
        output["name"]: output["metric"]
        for entry in comparison["runs"]
        for output in entry["spec"]["outputs"]
    }
    shown = []
    for curve in comparison["curves"]:
        metric = str(metrics.get(curve["output"]) or "")
        methods = {item["eval_method"] for item in curve["series"] if item["eval_method"]}
        title = (
            score_label(metric, methods.pop())
            if len(methods) == 1
            else _("score %(metric)s") % {"metric": metric}
        )
        chart, legend = charts_runs.overlaid_score_chart(
            curve["series"], run_ids=ids, metric=metric, score_title=title
        )
        if chart is not None:
            shown.append({"output": curve["output"], "chart": chart, "legend": legend})
    return shown


@login_required
@require_POST
def run_rerun(request: AuthenticatedHttpRequest, run_id: int) -> HttpResponse:
    run = selectors.access_run(caller=request.caller, id=run_id, action=Action.CHANGE)
    try:
        new_run = services.training_rerun(caller=request.caller, run=run)
    except ApplicationError as error:
        if error.status_code in (403, 404):
            raise
        messages.error(request, error.message)
    else:
        messages.success(
            request,
            _("Run #%(new)s queued: a re-run of run #%(old)s.")
            % {"new": new_run.pk, "old": run.pk},
        )
    return redirect("machines:runs", machine_id=run.machine_id)


@login_required
@require_GET
def run_artifact_download(
    request: AuthenticatedHttpRequest, run_id: int, name: str
) -> FileResponse:
    run = selectors.access_run(caller=request.caller, id=run_id)
    return artifact_response(run=run, name=name)
