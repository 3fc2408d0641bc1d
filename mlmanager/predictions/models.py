"""What models answered: the prediction log (with feedback) and batch predictions.

A Prediction is one answered row, logged from the UI or the API. Its id is a UUID chosen when
the answer is made, so the response can name it before the buffered log reaches the database
(see `log`). `feedback` holds the true values a user reports later, per output.

A prediction of an image model (predictions.images) also keeps the image it answered, as the
PNG the platform re-encoded, under a folder named by the prediction's id in its model's folder
(`image`; the mask of a segmentation and the overlay sit beside it), and may be reviewed:
confirmed, corrected with the true label, or rejected, with a note (`review_*`;
predictions.reviews).

A BatchPrediction is a file of rows (an upload or a dataset) predicted by a Job into a result
file under a server-chosen folder. A dataset's result holds the model's inputs, the predictions
and only the columns the caller named (`pass_through`): the result can be downloaded by any
member of the model's team.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from mlmanager.core.models import TeamOwnedModel


def prediction_image_dir(machine_storage_dir: str, prediction_id: str) -> str:
    """Server-chosen folder for an image prediction's files: the prediction's own UUID, never a
    name the client sent, inside its model's folder, so deleting the model (which removes its
    folder) removes its predictions' images with their rows."""
    return f"{machine_storage_dir}/predictions/{prediction_id}"


def batch_storage_dir(team_id: int) -> str:
    """Server-chosen folder for a batch's files: nothing a client sends becomes a path."""
    return f"batches/team-{team_id}/{uuid.uuid4().hex}"


class ReviewStatus(models.TextChoices):
    CONFIRMED = "confirmed", _("Confirmed")
    CORRECTED = "corrected", _("Corrected")
    REJECTED = "rejected", _("Rejected")


class Prediction(TeamOwnedModel):
    class Source(models.TextChoices):
        API = "api", _("API")
        UI = "ui", _("Web form")
        SITE = "site", _("Site sensors")  # a model attached to a site (monitoring)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    machine = models.ForeignKey(
        "machines.Machine", on_delete=models.CASCADE, related_name="predictions"
    )
    version = models.ForeignKey(
        "machines.ModelVersion", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    version_number = models.PositiveIntegerField()
    source = models.CharField(max_length=8, choices=Source.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    token = models.ForeignKey(
        "accounts.ApiToken", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    inputs = models.JSONField(default=dict)
    outputs = models.JSONField(default=dict)  # per output: {"value": .., "probabilities": ..}
    latency_ms = models.FloatField()
    feedback = models.JSONField(null=True, blank=True)  # per output: the true value
    feedback_at = models.DateTimeField(null=True, blank=True)
    feedback_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The image an image model answered: the storage name of the PNG the platform wrote (see
    # prediction_image_dir); empty for rows of a table. The buffered log's INSERT leaves it and
    # the review fields out, hence the database defaults.
    image = models.CharField(max_length=200, blank=True, default="", db_default="")
    review_status = models.CharField(
        max_length=10, choices=ReviewStatus.choices, blank=True, default="", db_default=""
    )
    review_label = models.CharField(
        max_length=200, blank=True, default="", db_default="", help_text=_("The true label.")
    )
    review_note = models.TextField(blank=True, default="", db_default="")
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    # Answered by the model's experimenter rules (no version yet): `version` is then null and
    # `version_number` 0.
    by_rules = models.BooleanField(default=False, db_default=False)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["machine", "-created_at"], name="prediction_machine_recent"),
            models.Index(fields=["team", "-created_at"], name="prediction_team_recent"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(review_status=ReviewStatus.CORRECTED, review_label=""),
                name="prediction_correction_has_label",
            ),
        ]

    def __str__(self) -> str:
        return f"Prediction {self.pk} of {self.machine_id}"

    @property
    def is_image(self) -> bool:
        return bool(self.image)

    @property
    def image_dir(self) -> str:
        return self.image.rpartition("/")[0]

    @property
    def mask_path(self) -> str:
        """A segmentation's mask (PNG, mode "L", pixel value = class index)."""
        return f"{self.image_dir}/mask.png"

    @property
    def overlay_path(self) -> str:
        """The overlay pages and reports show, written on first use (predictions.images)."""
        return f"{self.image_dir}/overlay.png"

    def output_name(self) -> str:
        return next(iter(self.outputs), "")

    def answer(self) -> dict:
        """The one output's answer of an image prediction (value, confidence, votes...)."""
        answer = self.outputs.get(self.output_name()) if isinstance(self.outputs, dict) else None
        return answer if isinstance(answer, dict) else {}


class BatchPrediction(TeamOwnedModel):
    class Format(models.TextChoices):
        CSV = "csv", _("CSV")
        PARQUET = "parquet", _("Parquet")

    machine = models.ForeignKey(
        "machines.Machine", on_delete=models.CASCADE, related_name="batch_predictions"
    )
    version = models.ForeignKey(
        "machines.ModelVersion", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    version_number = models.PositiveIntegerField()
    job = models.OneToOneField("jobs.Job", on_delete=models.CASCADE, related_name="batch")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    dataset = models.ForeignKey(
        "datasets.Dataset", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    original_filename = models.CharField(
        max_length=255, blank=True, help_text=_("As the client named it; shown, never a path.")
    )
    storage_dir = models.CharField(max_length=200, unique=True)
    source_name = models.CharField(max_length=40, blank=True)
    output_format = models.CharField(max_length=8, choices=Format.choices, default=Format.CSV)
    pass_through = models.JSONField(
        null=True,
        blank=True,
        help_text=_(
            "Columns of the dataset copied into the result besides the model's inputs; "
            "null for an uploaded file, whose columns are all kept."
        ),
    )
    row_count = models.BigIntegerField(null=True, blank=True)
    result_size_bytes = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"Batch {self.pk} of {self.machine_id}"

    @property
    def source_path(self) -> str:
        return f"{self.storage_dir}/{self.source_name}"

    @property
    def input_parquet_path(self) -> str:
        return f"{self.storage_dir}/input.parquet"

    @property
    def result_name(self) -> str:
        return f"predictions.{self.output_format}"

    @property
    def result_path(self) -> str:
        return f"{self.storage_dir}/{self.result_name}"

    @property
    def download_name(self) -> str:
        """The name a download is offered under (built by the server, safe in a header)."""
        return (
            f"model-{self.machine_id}-v{self.version_number}-batch-{self.pk}.{self.output_format}"
        )
