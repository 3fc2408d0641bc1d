"""The "Graphs" page of a table dataset: its saved graphs, drawn by Plotly.js in the browser
from each graph's figure (GET /api/v1/datasets/<id>/graphs/<graph id>/figure/, fetched by
datasets/graphs.js), a form to add one, and a delete button per graph."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from mlmanager.accounts.requests import AuthenticatedHttpRequest
from mlmanager.core.access import Action
from mlmanager.core.errors import ApplicationError
from mlmanager.datasets import graphs
from mlmanager.datasets.models import Dataset
from mlmanager.datasets.plotly_assets import maplibre_style_id, plotly_js_static_name
from mlmanager.datasets.selectors import access_dataset, require_table

FIELD_LABELS = {
    "x": gettext_lazy("x"),
    "y": gettext_lazy("y"),
    "z": gettext_lazy("z"),
    "hue": gettext_lazy("Hue (colour)"),
    "size": gettext_lazy("Size"),
    "style": gettext_lazy("Style (marker or dash)"),
    "col": gettext_lazy("Facet columns"),
    "row": gettext_lazy("Facet rows"),
}


class GraphForm(forms.Form):
    """The graph form; every column field lists the dataset's columns (the service checks the
    rest: which fields the type takes, needs, and which must be numeric)."""

    type = forms.ChoiceField(
        label=gettext_lazy("Type"),
        choices=[(graph_type.id, graph_type.label) for graph_type in graphs.GRAPH_TYPES.values()],
    )
    title = forms.CharField(label=gettext_lazy("Title"), max_length=200, required=False)

    def __init__(self, *args: Any, dataset: Dataset, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = [column["name"] for column in dataset.columns]
        choices = [("", "—"), *[(name, name) for name in names]]
        for field in graphs.FIELDS:
            self.fields[field] = forms.ChoiceField(
                label=FIELD_LABELS[field], choices=choices, required=False
            )
        numeric = [
            column["name"]
            for column in dataset.columns
            if column.get("type") in graphs.NUMERIC_TYPES
        ]
        self.fields["columns"] = forms.MultipleChoiceField(
            label=gettext_lazy("Columns (heatmap, pair grid; none: the numeric columns)"),
            choices=[(name, name) for name in numeric],
            required=False,
        )


def _graph_rows(dataset: Dataset) -> list[dict[str, Any]]:
    return [
        {
            "graph": graph,
            "label": graphs.GRAPH_TYPES[graph.type].label,
            "roles": [
                (FIELD_LABELS[field], name) for field, name in graphs.graph_roles(graph).items()
            ],
        }
        for graph in graphs.graphs_for_dataset(dataset=dataset)
    ]


@login_required
def dataset_graphs(request: AuthenticatedHttpRequest, dataset_id: int) -> HttpResponse:
    dataset = access_dataset(caller=request.caller, id=dataset_id)
    require_table(dataset=dataset)
    form = GraphForm(dataset=dataset)
    form_error = ""
    if request.method == "POST":
        dataset = access_dataset(caller=request.caller, id=dataset_id, action=Action.CHANGE)
        form = GraphForm(request.POST, dataset=dataset)
        if form.is_valid():
            data = dict(form.cleaned_data)
            try:
                graphs.dataset_graph_create(caller=request.caller, dataset=dataset, **data)
            except ApplicationError as error:
                if error.status_code in (403, 404):
                    raise
                form_error = error.message
            else:
                messages.success(request, _("Graph added."))
                return redirect("datasets:graphs", dataset_id=dataset.pk)
        else:
            form_error = _("Choose a type and columns from the lists.")
    limit = settings.MLMANAGER_GRAPH_SAMPLE_ROWS
    return render(
        request,
        "datasets/graphs.html",
        {
            "dataset": dataset,
            "form": form,
            "form_error": form_error,
            "column_fields": [form[field] for field in graphs.FIELDS],
            "graph_rows": _graph_rows(dataset),
            "graph_types_json": json.dumps(graphs.graph_types()),
            "sample_limit": limit,
            "rows_drawn": min(limit, dataset.row_count or 0),
            "sampled": (dataset.row_count or 0) > limit,
            "plotly_js": plotly_js_static_name(),
            "maplibre_style_id": maplibre_style_id(),
        },
        status=400 if form_error else 200,
    )


@login_required
@require_POST
def dataset_graph_delete(
    request: AuthenticatedHttpRequest, dataset_id: int, graph_id: int
) -> HttpResponse:
    graph = graphs.access_dataset_graph(
        caller=request.caller, dataset_id=dataset_id, graph_id=graph_id, action=Action.CHANGE
    )
    graphs.dataset_graph_delete(graph=graph)
    messages.success(request, _("Graph deleted."))
    return redirect("datasets:graphs", dataset_id=dataset_id)
