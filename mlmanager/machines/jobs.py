"""The machines app's jobs: the training kind, what its live events tell pages, and the
training and GPU queues' start-up (registered in apps.MachinesConfig.ready)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.urls import reverse
from django.utils.translation import gettext as _

from mlmanager.core.registries import SubjectLink
from mlmanager.machines.models import TrainingRun

MACHINE_TRAIN = "machine.train"
TRAINING_QUEUE = "training"
# Image models' runs go here when a live worker takes it (jobs.selectors.gpu_worker_available).
GPU_QUEUE = "gpu"


def training_pages(run_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """A training job's subject is its run; the model's pages match on `machine_id`."""
    runs = TrainingRun.objects.filter(pk__in=run_ids).values_list("pk", "machine_id")
    return {run_id: {"machine_id": machine_id} for run_id, machine_id in runs}


def model_link(machine_id: int, name: str) -> SubjectLink:
    return SubjectLink(
        "model",
        _("Model: %(name)s") % {"name": name},
        reverse("machines:detail", args=[machine_id]),
    )


def training_links(run_ids: Sequence[int]) -> dict[int, tuple[int, list[SubjectLink]]]:
    """The jobs pages link a training job to the model it trains."""
    runs = TrainingRun.objects.filter(pk__in=run_ids).values_list(
        "pk", "team_id", "machine_id", "machine__name"
    )
    return {
        run_id: (team_id, [model_link(machine_id, name)])
        for run_id, team_id, machine_id, name in runs
    }


def warm_up_training() -> None:
    """Start the training fork server as the worker starts (it imports the ML libraries,
    ~3 s), so the first run does not spend its time budget on that."""
    from mlmanager.engine.training.process import warm_up

    warm_up()


def warm_up_vision() -> None:
    """Import torch and MONAI as a GPU worker starts (several seconds), so the first image
    run does not spend its time budget on that. Workers of the training queue do not: most of
    their runs are tables'."""
    from mlmanager.engine.vision import warm_up

    warm_up()
