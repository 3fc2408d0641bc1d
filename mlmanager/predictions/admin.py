"""The prediction log and batch predictions in the Django admin (/admin/): records of what
models answered, read by staff (feedback is given on the log page, which checks the values)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from mlmanager.core.admin import ReadOnlyAdmin
from mlmanager.predictions.models import BatchPrediction, Prediction


@admin.register(Prediction)
class PredictionAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "machine",
        "version_number",
        "source",
        "user",
        "latency_ms",
        "has_feedback",
        "created_at",
    ]
    list_filter = ["source", ("feedback_at", admin.EmptyFieldListFilter)]
    search_fields = ["machine__name", "team__name", "user__email"]
    list_select_related = ["machine", "user"]
    date_hierarchy = "created_at"
    # The log can hold millions of rows: no COUNT(*) of the whole table per page.
    show_full_result_count = False

    @admin.display(description=_("feedback"), boolean=True)
    def has_feedback(self, prediction: Prediction) -> bool:
        return prediction.feedback is not None


@admin.register(BatchPrediction)
class BatchPredictionAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "machine",
        "version_number",
        "job",
        "source",
        "output_format",
        "row_count",
        "result_size_bytes",
        "created_by",
        "created_at",
    ]
    list_filter = ["output_format"]
    search_fields = ["machine__name", "team__name", "original_filename", "created_by__email"]
    list_select_related = ["machine", "job", "dataset", "created_by"]
    date_hierarchy = "created_at"

    @admin.display(description=_("source"))
    def source(self, batch: BatchPrediction) -> str:
        return batch.dataset.name if batch.dataset else batch.original_filename

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # its result file stays with the row; the job row owns the batch
