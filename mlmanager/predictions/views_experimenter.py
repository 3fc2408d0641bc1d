"""The predict form of a model answered by its experimenter rules (no version yet)."""

from __future__ import annotations

import time
from typing import Any

from django.http import HttpResponse

from mlmanager.accounts.requests import AuthenticatedHttpRequest
from mlmanager.core.errors import ApplicationError
from mlmanager.core.htmx import render_page_or_partial
from mlmanager.predictions import experimenter
from mlmanager.predictions.forms import PredictForm
from mlmanager.predictions.models import Prediction


def predict_by_rules(request: AuthenticatedHttpRequest, machine: Any) -> HttpResponse:
    """GET: the form of the model's inputs. POST: the rules' answer (a failing rule is shown
    as the form's error)."""
    columns = {
        column["name"]: column for column in (machine.dataset.columns if machine.dataset else [])
    }
    form = PredictForm(
        request.POST if request.method == "POST" else None,
        schema=experimenter.rules_schema(machine=machine),
        columns=columns,
        decimal_separator=request.user.decimal_separator,
    )
    context: dict[str, Any] = {"machine": machine, "version": None, "by_rules": True, "form": form}
    if form.is_bound and form.is_valid():
        row = {name: value for name, value in form.cleaned_data.items() if value is not None}
        try:
            body = experimenter.predictions_make_by_rules(
                machine=machine,
                payload={"rows": [row]},
                caller=request.caller,
                source=Prediction.Source.UI,
                started=time.perf_counter(),
            )
        except ApplicationError as error:
            if error.code != "rule_failed":
                raise
            form.add_error(None, error.message)
        else:
            prediction = body["predictions"][0]
            context["result"] = {
                "id": prediction["id"],
                "by_rules": True,
                "outputs": [
                    {
                        "name": name,
                        "value": prediction[name],
                        "probabilities": [],
                        "explanation": [],
                    }
                    for name in machine.output_names
                ],
                "timing_ms": body["timing_ms"],
            }
    return render_page_or_partial(
        request,
        page="predictions/predict.html",
        partial="predictions/partials/_predict_form.html",
        context=context,
    )
