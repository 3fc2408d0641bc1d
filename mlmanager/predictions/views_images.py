"""Pages of image predictions: an image model's predict form (drop or choose an image: the
class with its confidence, the members' votes and what the model looked at; or the mask over
the image with each class's area), a prediction's page with its review and PDF report, and
the prediction's files (image, overlay, mask) for those pages."""

from __future__ import annotations

import time
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from mlmanager.accounts.access import team_role
from mlmanager.accounts.requests import AuthenticatedHttpRequest
from mlmanager.core.access import ROLE_ACTIONS, Action
from mlmanager.core.errors import ApplicationError, NotFound
from mlmanager.core.htmx import render_page_or_partial
from mlmanager.core.uploads import raise_if_upload_too_large
from mlmanager.predictions import images, reviews, selectors
from mlmanager.predictions.api_images import pdf_response, png_response
from mlmanager.predictions.forms import ImagePredictForm, ReviewForm
from mlmanager.predictions.models import Prediction
from mlmanager.predictions.serving import served_image_version


def image_predict(request: AuthenticatedHttpRequest, machine: Any, version: Any) -> HttpResponse:
    """The predict page of an image model (predictions.views.predict sends it here)."""
    served = served_image_version(version)
    form = ImagePredictForm()
    prediction = None
    if request.method == "POST":
        try:
            form = ImagePredictForm(request.POST, request.FILES)
            raise_if_upload_too_large(request)
            if form.is_valid():
                started = time.perf_counter()
                body = images.image_predictions_make(
                    machine=machine,
                    version=version,
                    images=images.read_uploads([form.cleaned_data["image"]]),
                    caller=request.caller,
                    source=Prediction.Source.UI,
                    started=started,
                    with_overlay=True,
                )
                prediction = selectors.access_prediction(
                    caller=request.caller, id=body["predictions"][0]["id"]
                )
        except ApplicationError as error:
            if error.status_code in (403, 404):
                raise
            form.add_error(None, error.message)
    return render_page_or_partial(
        request,
        page="predictions/predict_image.html",
        partial="predictions/partials/_predict_image.html",
        context={
            "machine": machine,
            "version": version,
            "served": served,
            "form": form,
            "prediction": prediction,
            "answer": _answer_context(prediction) if prediction is not None else None,
        },
    )


def _answer_context(prediction: Prediction) -> dict[str, Any]:
    """What the answer partial shows, sorted for reading (the likeliest class first)."""
    answer = prediction.answer()
    probabilities = sorted((answer.get("probabilities") or {}).items(), key=lambda i: -i[1])
    areas = sorted((answer.get("areas") or {}).items(), key=lambda i: -i[1])
    return {
        **answer,
        "segmentation": "areas" in answer,
        "probabilities": probabilities,
        "areas": areas,
    }


def _can_review(request: AuthenticatedHttpRequest, prediction: Prediction) -> bool:
    role = team_role(caller=request.caller, team_id=prediction.team_id)
    return role is not None and Action.CHANGE in ROLE_ACTIONS[role]


def _image_prediction(request: AuthenticatedHttpRequest, prediction_id: Any) -> Prediction:
    prediction = selectors.access_prediction(caller=request.caller, id=prediction_id)
    if not prediction.is_image:
        raise NotFound(_("This prediction has no image."))
    return prediction


@login_required
def prediction_detail(request: AuthenticatedHttpRequest, prediction_id: Any) -> HttpResponse:
    prediction = _image_prediction(request, prediction_id)
    answer = _answer_context(prediction)
    classes = [] if answer["segmentation"] else [label for label, _p in answer["probabilities"]]
    initial = {"status": prediction.review_status or "confirmed"}
    if prediction.review_label:
        initial["label"] = prediction.review_label
    if prediction.review_note:
        initial["note"] = prediction.review_note
    return render(
        request,
        "predictions/prediction_detail.html",
        {
            "machine": prediction.machine,
            "prediction": prediction,
            "answer": answer,
            "can_review": _can_review(request, prediction),
            "review_form": ReviewForm(initial=initial, classes=sorted(classes)),
        },
    )


@login_required
@require_POST
def prediction_review(request: AuthenticatedHttpRequest, prediction_id: Any) -> HttpResponse:
    prediction = selectors.access_prediction(
        caller=request.caller, id=prediction_id, action=Action.CHANGE
    )
    answer = prediction.answer()
    classes = [] if "areas" in answer else sorted(answer.get("probabilities") or {})
    form = ReviewForm(request.POST, classes=classes)
    if form.is_valid():
        try:
            reviews.prediction_review(
                caller=request.caller,
                prediction=prediction,
                status=form.cleaned_data["status"],
                label=form.cleaned_data.get("label") or None,
                note=form.cleaned_data.get("note") or "",
            )
            messages.success(request, _("Review saved."))
        except ApplicationError as error:
            if error.status_code in (403, 404):
                raise
            messages.error(request, error.message)
    else:
        errors = form.errors.as_text()
        messages.error(request, _("Check the review: %(errors)s") % {"errors": errors})
    return redirect("predictions:detail", prediction_id=prediction.pk)


@login_required
def prediction_image(request: AuthenticatedHttpRequest, prediction_id: Any) -> HttpResponse:
    prediction = _image_prediction(request, prediction_id)
    return png_response(images.read_file(prediction.image))


@login_required
def prediction_overlay(request: AuthenticatedHttpRequest, prediction_id: Any) -> HttpResponse:
    prediction = _image_prediction(request, prediction_id)
    return png_response(images.overlay_png(prediction))


@login_required
def prediction_report(request: AuthenticatedHttpRequest, prediction_id: Any) -> FileResponse:
    return pdf_response(_image_prediction(request, prediction_id))
