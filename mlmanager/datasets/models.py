"""Datasets: an uploaded table or image archive kept as Parquet, with its profile."""

from __future__ import annotations

import uuid
from pathlib import PurePosixPath
from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from mlmanager.core.models import TeamOwnedModel


def dataset_storage_dir(team_id: int) -> str:
    """Server-chosen folder: nothing the client sends (file name included) becomes a path."""
    return f"datasets/team-{team_id}/{uuid.uuid4().hex}"


# Columns the page lists with their missing-value tokens; the API gives them all.
READING_COLUMNS_LISTED = 20
# Reports written before the decimal separator was recorded name a decimal comma in a note only.
_DECIMAL_COMMA_NOTE = "Read numbers with a decimal comma."


def reading_facts(report: dict[str, Any]) -> dict[str, Any]:
    """What reading a file found and did, from its ingest report: the format, encoding,
    delimiter, decimal and thousands separators, the missing-value tokens found (column → token
    → count; "" is an empty cell) and the text columns stored as numbers ("conversions")."""
    if not report:
        return {}
    decimal = report.get("decimal_separator")
    if decimal is None:
        decimal = "," if _DECIMAL_COMMA_NOTE in report.get("notes", []) else "."
    return {
        "source_format": report.get("source_format"),
        "encoding": report.get("encoding"),
        "delimiter": report.get("delimiter"),
        "decimal_separator": decimal,
        "thousands_separator": report.get("thousands_separator"),
        "missing_tokens": report.get("missing_tokens", {}),
        "conversions": report.get("conversions", []),
    }


class Dataset(TeamOwnedModel):
    """A table or a set of images a team uploaded. The original file is converted to Parquet by
    a job and profiled; for a table `profile` holds per-column types, roles and statistics, for
    images (one row per image, see engine.ingest.images) also the `images` block: task, classes,
    sizes, skipped files and whether a user confirmed what was detected."""

    class Status(models.TextChoices):
        PROCESSING = "processing", _("Processing")
        READY = "ready", _("Ready")
        FAILED = "failed", _("Failed")

    class Kind(models.TextChoices):
        TABLE = "table", _("Table")
        IMAGES = "images", _("Images")

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.TABLE)
    original_filename = models.CharField(
        max_length=255, help_text=_("As the client named it; shown, never used as a path.")
    )
    storage_dir = models.CharField(max_length=200, unique=True)
    source_name = models.CharField(max_length=40, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    status = models.CharField(
        max_length=12, choices=Status.choices, default=Status.PROCESSING, db_index=True
    )
    error = models.TextField(blank=True)
    row_count = models.BigIntegerField(null=True, blank=True)
    column_count = models.PositiveIntegerField(null=True, blank=True)
    profile = models.JSONField(default=dict, blank=True)
    ingest_report = models.JSONField(default=dict, blank=True)
    type_overrides = models.JSONField(default=dict, blank=True)
    # sha256 (hex) of the stored Parquet file, set each time processing writes it: a run
    # records it, so a re-run can tell whether the data is still what it trained on.
    checksum = models.CharField(max_length=64, blank=True)
    job = models.ForeignKey(
        "jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Versions (datasets.versions): a version is a dataset of its own whose file is its
    # parent's rows plus `rows_added` rows. `lineage` is the pk of the family's first dataset
    # (a number, not a key: the family stays one when that dataset is deleted); `rows_origin`
    # says where the rows came from ({"source": "api" | "file" | "feedback", ...}).
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    version = models.PositiveIntegerField(default=1)
    rows_added = models.BigIntegerField(null=True, blank=True)
    lineage = models.BigIntegerField(null=True, blank=True, db_index=True)
    rows_origin = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            # Two appends to one family at once cannot both become "v3".
            models.UniqueConstraint(
                fields=["lineage", "version"],
                condition=models.Q(lineage__isnull=False),
                name="dataset_lineage_version_unique",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def source_path(self) -> str:
        return str(PurePosixPath(self.storage_dir) / self.source_name)

    @property
    def parquet_path(self) -> str:
        return str(PurePosixPath(self.storage_dir) / "data.parquet")

    @property
    def is_images(self) -> bool:
        return self.kind == self.Kind.IMAGES

    @property
    def images(self) -> dict[str, Any] | None:
        """The profile's `images` block (an image dataset once processed), else None."""
        if not self.is_images:
            return None
        return dict(self.profile.get("images") or {}) or None

    @property
    def columns(self) -> list[dict[str, Any]]:
        return list(self.profile.get("columns", []))

    @property
    def notes(self) -> list[str]:
        return list(self.ingest_report.get("notes", []))

    @property
    def reading(self) -> dict[str, Any]:
        return reading_facts(self.ingest_report)

    @property
    def missing_tokens_listed(self) -> tuple[list[tuple[str, dict[str, int]]], int]:
        """The columns whose missing-value tokens the page lists, and how many more have some:
        a wide file can have thousands."""
        found = list(self.ingest_report.get("missing_tokens", {}).items())
        return found[:READING_COLUMNS_LISTED], max(len(found) - READING_COLUMNS_LISTED, 0)

    @property
    def delimiter_is_tab(self) -> bool:
        """A tab is invisible on the page, so it is named instead."""
        return self.ingest_report.get("delimiter") == "\t"


class DatasetGraph(TeamOwnedModel):
    """A graph of a table dataset a member saved: its type (one of `datasets.graphs.GRAPH_TYPES`)
    and the columns it draws in each role. The figure itself is drawn on request from a sample
    of the dataset's Parquet file (datasets.graphs.graph_figure), never stored."""

    class Type(models.TextChoices):
        SCATTER = "scatter", _("Scatter")
        LINE = "line", _("Line / time series")
        HISTOGRAM = "histogram", _("Histogram")
        BOX = "box", _("Box")
        VIOLIN = "violin", _("Violin")
        BAR = "bar", _("Bar")
        HEATMAP = "heatmap", _("Heatmap (correlations)")
        PAIR = "pair", _("Pair grid")
        DENSITY = "density", _("Density")
        PIE = "pie", _("Pie")
        AREA = "area", _("Area")
        BUBBLE = "bubble", _("Bubble")
        SCATTER_3D = "scatter_3d", _("3-D scatter")

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="graphs")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    title = models.CharField(max_length=200, blank=True)
    type = models.CharField(max_length=12, choices=Type.choices)
    x = models.CharField(max_length=255, blank=True)
    y = models.CharField(max_length=255, blank=True)
    z = models.CharField(max_length=255, blank=True)
    hue = models.CharField(max_length=255, blank=True)
    size = models.CharField(max_length=255, blank=True)
    style = models.CharField(max_length=255, blank=True)
    col = models.CharField(max_length=255, blank=True)
    row = models.CharField(max_length=255, blank=True)
    # Heatmap and pair grid: the columns drawn (empty: the dataset's numeric columns).
    columns = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.title or self.get_type_display()
