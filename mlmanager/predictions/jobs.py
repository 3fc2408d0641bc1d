"""The predictions app's jobs: the batch kind and what its live events tell pages (registered
in apps.PredictionsConfig.ready)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.urls import reverse
from django.utils.translation import gettext as _

from mlmanager.core.registries import SubjectLink
from mlmanager.datasets.jobs import dataset_link
from mlmanager.machines.jobs import model_link
from mlmanager.predictions.models import BatchPrediction

BATCH_PREDICT = "batch.predict"


def batch_pages(batch_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """A batch job's subject is its batch, listed on its model's batches page."""
    batches = BatchPrediction.objects.filter(pk__in=batch_ids).values_list("pk", "machine_id")
    return {
        batch_id: {"machine_id": machine_id, "batch_id": batch_id}
        for batch_id, machine_id in batches
    }


def batch_links(batch_ids: Sequence[int]) -> dict[int, tuple[int, list[SubjectLink]]]:
    """The jobs pages link a batch job to the dataset it read (if any), its model and the
    model's batches page."""
    batches = BatchPrediction.objects.filter(pk__in=batch_ids).values_list(
        "pk", "team_id", "machine_id", "machine__name", "dataset_id", "dataset__name"
    )
    links: dict[int, tuple[int, list[SubjectLink]]] = {}
    for batch_id, team_id, machine_id, machine_name, dataset_id, dataset_name in batches:
        batch = SubjectLink(
            "batch",
            _("Batch #%(id)s") % {"id": batch_id},
            reverse("predictions:batches", args=[machine_id]),
        )
        read = [dataset_link(dataset_id, dataset_name)] if dataset_id is not None else []
        links[batch_id] = (team_id, [*read, model_link(machine_id, machine_name), batch])
    return links
