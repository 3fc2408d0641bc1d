"""The datasets app's jobs: their kind, and what their live events tell pages (registered in
apps.DatasetsConfig.ready)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.urls import reverse
from django.utils.translation import gettext as _

from mlmanager.core.registries import SubjectLink
from mlmanager.datasets.models import Dataset

DATASET_PROCESS = "dataset.process"


def dataset_pages(dataset_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The subject of a processing job is its dataset: its pages match on `dataset_id`."""
    return {dataset_id: {"dataset_id": dataset_id} for dataset_id in dataset_ids}


def dataset_link(dataset_id: int, name: str) -> SubjectLink:
    return SubjectLink(
        "dataset",
        _("Dataset: %(name)s") % {"name": name},
        reverse("datasets:detail", args=[dataset_id]),
    )


def dataset_links(dataset_ids: Sequence[int]) -> dict[int, tuple[int, list[SubjectLink]]]:
    """The jobs pages link a processing job to its dataset, while it exists."""
    rows = Dataset.objects.filter(pk__in=dataset_ids).values_list("pk", "team_id", "name")
    return {pk: (team_id, [dataset_link(pk, name)]) for pk, team_id, name in rows}
