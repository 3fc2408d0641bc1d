"""The dataset page's relations section (htmx partial): pick an output, see how every column
goes with it (datasets.relations)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render

from mlmanager.accounts.requests import AuthenticatedHttpRequest
from mlmanager.core.errors import ApplicationError
from mlmanager.datasets import relations, selectors


@login_required
def dataset_relations(request: AuthenticatedHttpRequest, dataset_id: int) -> HttpResponse:
    dataset = selectors.access_dataset(caller=request.caller, id=dataset_id)
    selectors.require_table(dataset=dataset)
    choices = relations.output_choices(dataset=dataset)
    output = request.GET.get("output") or ""
    found = None
    error = ""
    if output:
        try:
            found = relations.dataset_relations(dataset=dataset, output=output)
        except ApplicationError as refused:
            if refused.status_code in (403, 404):
                raise
            error = refused.message
    return render(
        request,
        "datasets/partials/_relations.html",
        {"dataset": dataset, "choices": choices, "output": output, "found": found, "error": error},
    )
