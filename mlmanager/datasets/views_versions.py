"""Dataset pages: the versions of a dataset (lineage) and the form that appends rows by file."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from mlmanager.accounts.requests import AuthenticatedHttpRequest
from mlmanager.core.access import Action
from mlmanager.core.errors import ApplicationError
from mlmanager.core.uploads import raise_if_upload_too_large
from mlmanager.datasets import selectors, versions
from mlmanager.datasets.forms import AppendRowsForm

# Versions the page lists (newest last); the API pages through all of them.
VERSIONS_LISTED = 50


@login_required
def dataset_versions(request: AuthenticatedHttpRequest, dataset_id: int) -> HttpResponse:
    """The family of versions (parent, rows added, from where, by whom, when) and, for a
    ready table, the form that appends rows from a file (htmx partial of the dataset page)."""
    dataset = selectors.access_dataset(caller=request.caller, id=dataset_id)
    family = list(versions.dataset_family(dataset=dataset)[:VERSIONS_LISTED])
    return render(
        request,
        "datasets/partials/_versions.html",
        {
            "dataset": dataset,
            "family": family,
            "form": AppendRowsForm(),
            "max_rows": versions.APPEND_MAX_ROWS,
        },
    )


@login_required
@require_POST
def dataset_append_rows(request: AuthenticatedHttpRequest, dataset_id: int) -> HttpResponse:
    dataset = selectors.access_dataset(caller=request.caller, id=dataset_id, action=Action.CHANGE)
    try:
        # Reading request.POST streams the body; the size handler may refuse it.
        form = AppendRowsForm(request.POST, request.FILES)
        raise_if_upload_too_large(request)
        if not form.is_valid():
            raise ApplicationError(_("Choose a file of rows to append."))
        version = versions.dataset_rows_append(
            caller=request.caller,
            dataset=dataset,
            upload=form.cleaned_data["file"],
            source="file",
        )
    except ApplicationError as error:
        if error.status_code in (403, 404):
            raise
        messages.error(request, error.message)
        return redirect("datasets:detail", dataset_id=dataset.pk)
    messages.success(
        request,
        _("Version %(number)s made with %(count)s rows added; it is being processed.")
        % {"number": version.version, "count": version.rows_added},
    )
    return redirect("datasets:detail", dataset_id=version.pk)
