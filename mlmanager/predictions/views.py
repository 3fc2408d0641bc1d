"""Prediction pages: the single-prediction form, the prediction log with feedback, and batch
predictions (upload or dataset, progress, download)."""

from __future__ import annotations

import time
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from mlmanager.accounts.requests import AuthenticatedHttpRequest
from mlmanager.core.access import Action
from mlmanager.core.errors import ApplicationError
from mlmanager.core.filters import page_filter
from mlmanager.core.htmx import render_page_or_partial
from mlmanager.core.pagination import page_of
from mlmanager.core.uploads import raise_if_upload_too_large
from mlmanager.datasets.selectors import access_dataset_of_team, ready_datasets_for_caller
from mlmanager.machines.selectors import access_machine
from mlmanager.predictions import batches, selectors, services
from mlmanager.predictions.api import batch_file_response
from mlmanager.predictions.experimenter import answers_by_rules_now
from mlmanager.predictions.filters import PredictionFilter
from mlmanager.predictions.forms import BatchForm, FeedbackForm, PredictForm
from mlmanager.predictions.image_batches import masks_file_response
from mlmanager.predictions.models import BatchPrediction, Prediction
from mlmanager.predictions.schema import InputSchema
from mlmanager.predictions.serving import is_image_version
from mlmanager.predictions.views_experimenter import predict_by_rules
from mlmanager.predictions.views_images import image_predict

# The filters the model's log offers (predictions.filters).
MODEL_LOG_FILTERS = ("source", "has_feedback", "version")


def _form_columns(machine: Any) -> dict[str, dict]:
    """The dataset's column profiles (choices and ranges for the form), if it still exists."""
    if machine.dataset is None:
        return {}
    return {column["name"]: column for column in machine.dataset.columns}


@login_required
def predict(request: AuthenticatedHttpRequest, machine_id: int) -> HttpResponse:
    """GET: the form. POST: the answer, its probabilities and what moved it (htmx swaps the
    result in; without htmx the whole page comes back with it)."""
    machine = access_machine(caller=request.caller, id=machine_id)
    if answers_by_rules_now(machine=machine):
        return predict_by_rules(request, machine)
    version = services.version_for_prediction(machine=machine)
    if is_image_version(version):
        return image_predict(request, machine, version)
    schema = InputSchema.of_version(version.inputs)
    form = PredictForm(
        request.POST if request.method == "POST" else None,
        schema=schema,
        columns=_form_columns(machine),
        decimal_separator=request.user.decimal_separator,
    )
    context: dict[str, Any] = {"machine": machine, "version": version, "form": form}
    if form.is_bound and form.is_valid():
        started = time.perf_counter()
        row = {name: value for name, value in form.cleaned_data.items() if value is not None}
        body = services.predictions_make(
            machine=machine,
            version=version,
            payload={"rows": [row]},
            caller=request.caller,
            source=Prediction.Source.UI,
            started=started,
            explain=True,
            decimal_separator=request.user.decimal_separator,
        )
        context["result"] = _result(body)
        for warning in body["warnings"]:
            form.warnings.setdefault(warning["field"], []).append(warning["message"])
    return render_page_or_partial(
        request,
        page="predictions/predict.html",
        partial="predictions/partials/_predict_form.html",
        context=context,
    )


def _result(body: dict[str, Any]) -> dict[str, Any]:
    prediction, explanation = body["predictions"][0], body["explanation"]
    outputs = []
    for name, moves in explanation.items():
        probabilities = prediction.get("probabilities") or {}
        if probabilities and not all(isinstance(v, float) for v in probabilities.values()):
            probabilities = probabilities.get(name, {})
        outputs.append(
            {
                "name": name,
                "value": prediction[name],
                "probabilities": sorted(probabilities.items(), key=lambda item: -item[1]),
                "explanation": [{**move, "size": abs(move["effect"])} for move in moves],
            }
        )
    return {"id": prediction["id"], "outputs": outputs, "timing_ms": body["timing_ms"]}


@login_required
def prediction_log(request: AuthenticatedHttpRequest, machine_id: int) -> HttpResponse:
    machine = access_machine(caller=request.caller, id=machine_id)
    log_filter = page_filter(
        request=request,
        queryset=selectors.predictions_for_caller(caller=request.caller, machine=machine),
        filterset_class=PredictionFilter,
    )
    page = page_of(request, log_filter.qs, long_list=True)
    form = log_filter.form
    return render_page_or_partial(
        request,
        page="predictions/log.html",
        partial="predictions/partials/_log_table.html",
        context={
            "machine": machine,
            "page": page,
            "filter_fields": [form[name] for name in MODEL_LOG_FILTERS],
            "accuracy": selectors.live_accuracy(machine=machine),
            "feedback_form": FeedbackForm(),
        },
    )


@login_required
@require_POST
def prediction_feedback(request: AuthenticatedHttpRequest, prediction_id: str) -> HttpResponse:
    prediction = selectors.access_prediction(
        caller=request.caller, id=prediction_id, action=Action.CHANGE
    )
    form = FeedbackForm(request.POST)
    error = ""
    if form.is_valid():
        try:
            prediction = services.prediction_feedback(
                caller=request.caller, prediction=prediction, actual=form.cleaned_data["actual"]
            )
        except ApplicationError as failure:
            if failure.status_code in (403, 404):
                raise
            error = failure.message
    else:
        error = _("Enter the true value.")
    return render(
        request,
        "predictions/partials/_log_row.html",
        {"prediction": prediction, "feedback_form": FeedbackForm(), "feedback_error": error},
    )


@login_required
@require_POST
def feedback_dataset(request: AuthenticatedHttpRequest, machine_id: int) -> HttpResponse:
    machine = access_machine(caller=request.caller, id=machine_id, action=Action.CHANGE)
    try:
        dataset = services.feedback_dataset_create(caller=request.caller, machine=machine)
    except ApplicationError as error:
        if error.status_code in (403, 404):
            raise
        messages.error(request, error.message)
        return redirect("predictions:log", machine_id=machine.pk)
    messages.success(
        request,
        _("Dataset “%(name)s” is being prepared; train a model on it when it is ready.")
        % {"name": dataset.name},
    )
    return redirect("datasets:detail", dataset_id=dataset.pk)


@login_required
def batch_list(request: AuthenticatedHttpRequest, machine_id: int) -> HttpResponse:
    """The batches of a model and the form to start one (POST)."""
    machine = access_machine(caller=request.caller, id=machine_id)
    datasets = ready_datasets_for_caller(caller=request.caller, team=machine.team_id)
    choices = [(dataset.pk, dataset.name) for dataset in datasets[:200]]
    # An image model's batch is a zip of images, answered into a CSV (and masks).
    images_model = machine.active_version is not None and is_image_version(machine.active_version)
    form = BatchForm(datasets=choices, images=images_model)
    if request.method == "POST":
        try:
            # Reading request.POST streams the body; the size handler may refuse it.
            form = BatchForm(request.POST, request.FILES, datasets=choices, images=images_model)
            raise_if_upload_too_large(request)
            if form.is_valid():
                _batch_start(request, machine_id, form.cleaned_data)
                messages.success(request, _("Batch prediction queued."))
                return redirect("predictions:batches", machine_id=machine.pk)
        except ApplicationError as error:
            if error.status_code in (403, 404):
                raise
            form.add_error(None, error.message)
    page = page_of(request, selectors.batches_for_machine(machine=machine))
    return render_page_or_partial(
        request,
        page="predictions/batches.html",
        partial="predictions/partials/_batch_table.html",
        context={
            "machine": machine,
            "form": form,
            "page": page,
            "any_running": any(not batch.job.is_finished for batch in page),
            "images_model": images_model,
        },
    )


def _batch_start(request: AuthenticatedHttpRequest, machine_id: int, data: dict) -> None:
    machine = access_machine(caller=request.caller, id=machine_id, action=Action.CHANGE)
    dataset = data.get("dataset")
    batches.batch_create(
        machine=machine,
        version=services.version_for_prediction(machine=machine),
        caller=request.caller,
        upload=data.get("file"),
        dataset=access_dataset_of_team(caller=request.caller, id=dataset, team_id=machine.team_id)
        if dataset
        else None,
        output_format=data.get("format") or BatchPrediction.Format.CSV,
        pass_through=data.get("pass_through") or None,
    )


@login_required
def batch_download(request: AuthenticatedHttpRequest, batch_id: int) -> FileResponse:
    batch = selectors.access_batch(caller=request.caller, id=batch_id)
    return batch_file_response(batch)


@login_required
def batch_masks(request: AuthenticatedHttpRequest, batch_id: int) -> FileResponse:
    batch = selectors.access_batch(caller=request.caller, id=batch_id)
    return masks_file_response(batch)
