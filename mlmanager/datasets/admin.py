"""Datasets in the Django admin (/admin/): staff find a team's data, see how it was read and
profiled, and delete it with its files."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from mlmanager.core.admin import ReadOnlyAdmin
from mlmanager.datasets import services
from mlmanager.datasets.models import Dataset, DatasetGraph


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "team",
        "status",
        "row_count",
        "column_count",
        "size_bytes",
        "created_by",
        "created_at",
    ]
    list_filter = ["status"]
    search_fields = ["name", "original_filename", "team__name", "created_by__email"]
    list_select_related = ["team", "created_by"]
    date_hierarchy = "created_at"
    # Everything but the name follows the stored file (the processing job writes it);
    # the timestamps are among these.
    readonly_fields = [field.name for field in Dataset._meta.fields if field.name != "name"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a dataset is an upload, processed by a job: the datasets page makes it

    def delete_model(self, request: HttpRequest, obj: Dataset) -> None:
        # The row and, after commit, its folder; the staff member is recorded.
        services.dataset_delete(caller=request.caller, dataset=obj)  # type: ignore[attr-defined]

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Dataset]) -> None:
        for dataset in queryset.select_related("job"):
            services.dataset_delete(caller=request.caller, dataset=dataset)  # type: ignore[attr-defined]


@admin.register(DatasetGraph)
class DatasetGraphAdmin(ReadOnlyAdmin):
    """Graphs are made on the dataset's Graphs page, which checks their columns; staff read
    them here (and may delete one)."""

    list_display = ["title", "type", "dataset", "team", "created_by", "created_at"]
    list_filter = ["type"]
    search_fields = ["title", "dataset__name", "team__name"]
    list_select_related = ["dataset", "team", "created_by"]
