"""Dataset pages: list and upload, detail (profile, charts, preview), rename, types, delete;
for an image dataset the gallery, one image's page, its PNGs and the confirmation."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
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
from mlmanager.datasets import images, selectors, services
from mlmanager.datasets.api import image_response
from mlmanager.datasets.charts import class_balance_chart, column_chart
from mlmanager.datasets.filters import DatasetFilter
from mlmanager.datasets.forms import ColumnTypeForm, RenameForm, UploadForm
from mlmanager.datasets.models import Dataset
from mlmanager.engine.profiling import COLUMN_TYPES

PREVIEW_PAGE_SIZE = 25
GALLERY_PAGE_SIZE = 24


@login_required
def dataset_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    team = request.team
    form = UploadForm()
    upload_error = ""
    if request.method == "POST":
        try:
            # Reading request.POST streams the body; the size handler may refuse it.
            form = UploadForm(request.POST, request.FILES)
            raise_if_upload_too_large(request)
            if form.is_valid():
                dataset = services.dataset_create(
                    caller=request.caller,
                    upload=form.cleaned_data["file"],
                    name=form.cleaned_data["name"],
                    team_id=team.pk if team else None,
                )
                messages.success(
                    request, _("Uploaded. Processing %(name)s…") % {"name": dataset.name}
                )
                return redirect("datasets:detail", dataset_id=dataset.pk)
        except ApplicationError as error:
            if error.status_code in (403, 404):
                raise
            upload_error = error.message
    datasets = (
        selectors.datasets_for_caller(caller=request.caller, team=team)
        if team
        else Dataset.objects.none()
    )
    datasets = page_filter(request=request, queryset=datasets, filterset_class=DatasetFilter).qs
    page = page_of(request, datasets)
    return render_page_or_partial(
        request,
        page="datasets/list.html",
        partial="datasets/partials/_table.html",
        context={
            "form": form,
            "upload_error": upload_error,
            "page": page,
            "any_processing": any(d.status == "processing" for d in page),
        },
    )


def _column_rows(dataset: Dataset) -> list[dict[str, object]]:
    return [{"column": column, "chart": column_chart(column)} for column in dataset.columns]


def _images_context(dataset: Dataset) -> dict[str, object]:
    """What the page shows of an image dataset: the images block, its class balance chart and,
    for segmentation, the colour of each mask class."""
    block = dataset.images or {}
    mask_classes = block.get("mask_classes") or []
    return {
        "images": block,
        "class_chart": class_balance_chart(block.get("classes") or {}),
        "class_column": {"name": _("Images per class")},
        "mask_legend": [
            {"name": name, "colour": images.overlay_colour(index)}
            for index, name in enumerate(mask_classes)
            if index
        ],
    }


@login_required
def dataset_detail(request: AuthenticatedHttpRequest, dataset_id: int) -> HttpResponse:
    dataset = selectors.access_dataset(caller=request.caller, id=dataset_id)
    context: dict[str, object] = {
        "dataset": dataset,
        "job": dataset.job,
        "column_rows": [] if dataset.is_images else _column_rows(dataset),
        "column_types": COLUMN_TYPES,
        "rename_form": RenameForm(initial={"name": dataset.name}),
    }
    if dataset.is_images:
        context.update(_images_context(dataset))
    return render_page_or_partial(
        request,
        page="datasets/detail.html",
        partial="datasets/partials/_body.html",
        context=context,
    )


@login_required
def dataset_preview(request: AuthenticatedHttpRequest, dataset_id: int) -> HttpResponse:
    dataset = selectors.access_dataset(caller=request.caller, id=dataset_id)
    try:
        page_number = max(1, int(request.GET.get("page", "1")))
    except ValueError:
        page_number = 1
    total = dataset.row_count or 0
    last_page = max(1, -(-total // PREVIEW_PAGE_SIZE))
    page_number = min(page_number, last_page)
    columns, rows = selectors.dataset_preview(
        dataset=dataset, offset=(page_number - 1) * PREVIEW_PAGE_SIZE, limit=PREVIEW_PAGE_SIZE
    )
    return render(
        request,
        "datasets/partials/_preview.html",
        {
            "dataset": dataset,
            "columns": columns,
            "rows": rows,
            "page_number": page_number,
            "last_page": last_page,
            "first_row": (page_number - 1) * PREVIEW_PAGE_SIZE + 1,
        },
    )


@login_required
@require_POST
def dataset_rename(request: AuthenticatedHttpRequest, dataset_id: int) -> HttpResponse:
    dataset = selectors.access_dataset(caller=request.caller, id=dataset_id, action=Action.CHANGE)
    form = RenameForm(request.POST)
    if form.is_valid():
        services.dataset_rename(dataset=dataset, name=form.cleaned_data["name"])
        messages.success(request, _("Renamed."))
    else:
        messages.error(request, _("The name cannot be empty."))
    return redirect("datasets:detail", dataset_id=dataset.pk)


@login_required
@require_POST
def dataset_column_type(request: AuthenticatedHttpRequest, dataset_id: int) -> HttpResponse:
    dataset = selectors.access_dataset(caller=request.caller, id=dataset_id, action=Action.CHANGE)
    form = ColumnTypeForm(request.POST)
    if not form.is_valid():
        raise ApplicationError(_("Choose one of the listed types."))
    services.dataset_set_column_types(
        caller=request.caller,
        dataset=dataset,
        types={form.cleaned_data["column"]: form.cleaned_data["type"]},
    )
    messages.success(request, _("Type changed; the profile is being updated."))
    return redirect("datasets:detail", dataset_id=dataset.pk)


@login_required
@require_POST
def dataset_delete(request: AuthenticatedHttpRequest, dataset_id: int) -> HttpResponse:
    dataset = selectors.access_dataset(caller=request.caller, id=dataset_id, action=Action.CHANGE)
    services.dataset_delete(caller=request.caller, dataset=dataset)
    messages.success(request, _("%(name)s was deleted.") % {"name": dataset.name})
    return redirect("datasets:list")


def _page_number(request: AuthenticatedHttpRequest) -> int:
    try:
        return max(1, int(request.GET.get("page", "1")))
    except ValueError:
        return 1


@login_required
def dataset_gallery(request: AuthenticatedHttpRequest, dataset_id: int) -> HttpResponse:
    """A page of thumbnails (htmx partial), of one class when `?label=` names one."""
    dataset = selectors.access_dataset(caller=request.caller, id=dataset_id)
    images.require_images(dataset=dataset)
    block = dataset.images or {}
    label = request.GET.get("label") or None
    if label is not None and label not in (block.get("classes") or {}):
        label = None
    if block.get("task") != "classification":
        label = None
    total = images.image_count(dataset, label)
    last_page = max(1, -(-total // GALLERY_PAGE_SIZE))
    page_number = min(_page_number(request), last_page)
    rows = (
        images.image_rows(
            dataset,
            offset=(page_number - 1) * GALLERY_PAGE_SIZE,
            limit=GALLERY_PAGE_SIZE,
            label=label,
        )
        if total
        else []
    )
    return render(
        request,
        "datasets/partials/_gallery.html",
        {
            "dataset": dataset,
            "images": block,
            "rows": rows,
            "label": label or "",
            "total": total,
            "page_number": page_number,
            "last_page": last_page,
        },
    )


@login_required
def dataset_image(request: AuthenticatedHttpRequest, dataset_id: int, index: int) -> HttpResponse:
    """One image: full size, its mask over it (segmentation), name, size and label."""
    dataset = selectors.access_dataset(caller=request.caller, id=dataset_id)
    images.require_images(dataset=dataset)
    row = images.image_row(dataset, index)
    return render(
        request,
        "datasets/image.html",
        {
            "dataset": dataset,
            "row": row,
            "previous_index": index - 1 if index > 0 else None,
            "next_index": index + 1 if index + 1 < images.image_count(dataset) else None,
            **_images_context(dataset),
        },
    )


# The PNGs a page shows: the stored ones, and masks drawn over the image or its thumbnail.
_PAGE_IMAGE_FILES = {"image", "thumbnail", "mask", "overlay", "thumbnail-overlay"}


@login_required
def dataset_image_file(
    request: AuthenticatedHttpRequest, dataset_id: int, index: int, column: str
) -> HttpResponse:
    dataset = selectors.access_dataset(caller=request.caller, id=dataset_id)
    if column not in _PAGE_IMAGE_FILES:
        raise Http404()
    if column in {"overlay", "thumbnail-overlay"}:
        data = images.mask_overlay(dataset, index, thumbnail=column == "thumbnail-overlay")
    else:
        data = images.image_bytes(dataset, index, column)
    return image_response(data)


@login_required
@require_POST
def dataset_confirm(request: AuthenticatedHttpRequest, dataset_id: int) -> HttpResponse:
    dataset = selectors.access_dataset(caller=request.caller, id=dataset_id, action=Action.CHANGE)
    services.dataset_confirm_images(caller=request.caller, dataset=dataset)
    messages.success(request, _("Confirmed: the detected task and classes are kept."))
    return redirect("datasets:detail", dataset_id=dataset.pk)
