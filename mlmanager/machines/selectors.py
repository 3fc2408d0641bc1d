"""Reads about models, runs and versions, always team-scoped from the caller's point of view."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from mlmanager.core.access import Action, access_team_object, parse_id
from mlmanager.core.errors import Conflict, NotFound
from mlmanager.datasets.models import Dataset
from mlmanager.engine.artifacts import ArtifactError
from mlmanager.engine.training import TrainedModel, load_model
from mlmanager.jobs.models import Job
from mlmanager.machines import files
from mlmanager.machines.models import Machine, ModelVersion, TrainingRun

RUNNING_STATUSES = (Job.Status.QUEUED, Job.Status.RUNNING)


def machines_for_user(*, user: Any, team: Any = None) -> QuerySet[Machine]:
    machines = (
        Machine.objects.with_status()
        .for_user(user)
        .select_related("created_by", "dataset", "active_version")
    )
    if team is not None:
        machines = machines.filter(team=team)
    return machines


def access_machine(*, user: Any, id: Any, action: Action = Action.VIEW) -> Machine:
    return access_team_object(
        Machine.objects.with_status().select_related("team", "dataset", "active_version__run__job"),
        user=user,
        id=id,
        action=action,
    )


def access_run(*, user: Any, id: Any, action: Action = Action.VIEW) -> TrainingRun:
    return access_team_object(
        TrainingRun.objects.select_related("job", "machine", "version"),
        user=user,
        id=id,
        action=action,
    )


def access_version(*, machine: Machine, number: Any) -> ModelVersion:
    """A version by its number within a model the caller already accessed."""
    version = (
        ModelVersion.objects.filter(machine=machine, number=parse_id(number))
        .select_related("run")
        .first()
    )
    if version is None:
        raise NotFound()
    return version


def version_model(*, version: ModelVersion, output: str) -> TrainedModel:
    """The trained model of one output of a version, loaded only after its signature checks."""
    record = next((item for item in version.outputs if item["name"] == output), None)
    if record is None:
        raise NotFound(_("This version does not predict “%(name)s”.") % {"name": output})
    try:
        return load_model(
            files.local_path(record["artifact"]),
            key=files.artifact_key(),
            signature=record["artifact_signature"],
        )
    except ArtifactError as error:
        raise Conflict(error.message, code=error.code) from None


def runs_for_machine(*, machine: Machine) -> QuerySet[TrainingRun]:
    return TrainingRun.objects.filter(machine=machine).select_related(
        "job", "version", "created_by"
    )


def versions_for_machine(*, machine: Machine) -> QuerySet[ModelVersion]:
    return ModelVersion.objects.filter(machine=machine).select_related("run", "created_by")


def machine_active_run(*, machine: Machine) -> TrainingRun | None:
    """The run still working, if any. A run whose job ended without the run hearing of it (a
    worker killed with `kill -9`, failed later by the stale-job check) is not active."""
    return (
        TrainingRun.objects.filter(
            machine=machine, is_active=True, job__status__in=RUNNING_STATUSES
        )
        .select_related("job", "version")
        .first()
    )


def machine_training_status(*, machine: Machine) -> dict[str, Any]:
    """What a client polling a training needs: the machine's status, the latest run with its
    progress, and the active version with its metrics."""
    run = runs_for_machine(machine=machine).first()
    status = getattr(machine, "status", None)
    if status is None:  # not fetched through access_machine: ask the same annotation
        statuses = Machine.objects.with_status().filter(pk=machine.pk)
        status = statuses.values_list("status", flat=True).get()  # type: ignore[misc]
    return {
        "status": status,
        "run": run,
        "active_version": machine.active_version,
    }


# --- choosing columns ------------------------------------------------------------------------

_IGNORE_REASONS = {
    "identifier": gettext_lazy("an identifier: a different value in nearly every row"),
    "constant": gettext_lazy("the same value in every row"),
    "empty": gettext_lazy("no values"),
}


def output_candidates(*, dataset: Dataset) -> list[dict[str, Any]]:
    """Columns that could be predicted, the profile's suggestions first."""
    columns = [
        column
        for column in dataset.columns
        if column.get("type") not in {"identifier", "constant", "empty", "datetime", "json"}
    ]
    return sorted(columns, key=lambda column: column.get("role") != "output_candidate")


def default_inputs(*, dataset: Dataset, outputs: list[str]) -> list[str]:
    """The profile's suggested inputs, minus what is predicted."""
    return [
        column["name"]
        for column in dataset.columns
        if column.get("role") == "input" and column["name"] not in outputs
    ]


def input_plan(
    *, dataset: Dataset, outputs: list[str], inputs: list[str] | None = None
) -> list[dict[str, Any]]:
    """Every column that is not predicted: whether it is an input, and if not, why not.

    `inputs` are the chosen ones (None: the default). The reason comes from the profile's
    suggested role, so a user sees why an identifier or a mostly empty column was left out.
    """
    chosen = set(default_inputs(dataset=dataset, outputs=outputs) if inputs is None else inputs)
    plan = []
    for column in dataset.columns:
        name = column["name"]
        if name in outputs:
            continue
        included = name in chosen
        plan.append(
            {
                "name": name,
                "type": column.get("type", ""),
                "role": column.get("role", ""),
                "included": included,
                "reason": "" if included else _left_out_reason(column),
            }
        )
    return plan


def _left_out_reason(column: dict[str, Any]) -> str:
    role = column.get("role")
    role_reason = str(column.get("role_reason") or "")
    if role == "ignore":
        return str(_IGNORE_REASONS.get(role_reason) or role_reason or _("suggested to be ignored"))
    if role == "output_candidate":
        return _("suggested as an output (%(reason)s)") % {"reason": role_reason}
    return _("left out by you")
