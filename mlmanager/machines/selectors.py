"""Reads about models, runs and versions, always team-scoped from the caller's point of view."""

from __future__ import annotations

import dataclasses
from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from mlmanager.accounts.access import access_team_object
from mlmanager.accounts.caller import Caller
from mlmanager.accounts.models import User
from mlmanager.accounts.tokens import token_grant
from mlmanager.core.access import Action, parse_id, require_role_action
from mlmanager.core.errors import Conflict, NotFound
from mlmanager.core.models import deferred_instance
from mlmanager.datasets.models import Dataset
from mlmanager.engine.artifacts import ArtifactError
from mlmanager.engine.training import TrainedModel, load_model
from mlmanager.jobs.models import Job
from mlmanager.machines import files
from mlmanager.machines.models import (
    Machine,
    ModelAlias,
    ModelAliasEvent,
    ModelVersion,
    RetrainingDecision,
    TrainingRun,
)

RUNNING_STATUSES = (Job.Status.QUEUED, Job.Status.RUNNING)


def machines_for_caller(*, caller: Caller, team: Any = None) -> QuerySet[Machine]:
    machines = (
        Machine.objects.with_status()
        .for_caller(caller)
        .select_related("created_by", "dataset", "active_version")
    )
    if team is not None:
        machines = machines.filter(team=team)
    return machines


def access_machine(*, caller: Caller, id: Any, action: Action = Action.VIEW) -> Machine:
    return access_team_object(
        Machine.objects.with_status().select_related("team", "dataset", "active_version__run__job"),
        caller=caller,
        id=id,
        action=action,
    )


def access_machine_to_predict(*, caller: Caller, id: Any) -> Machine:
    """A model the caller may predict with, and its active version, reading only the columns
    the predict path needs (one query of a few columns on every API call; anything else
    loads on first use, e.g. a version's outputs when it is not in the serving cache yet)."""
    return access_team_object(
        Machine.objects.select_related("active_version").only(
            "id", "team_id", "active_version__id", "active_version__number"
        ),
        caller=caller,
        id=id,
        action=Action.VIEW,
    )


@dataclasses.dataclass(frozen=True)
class PredictGrant:
    """What one query found for a bearer token on the predict path: the caller the token stands
    for, and the model when the caller may predict with it (None: not found, for this caller)."""

    caller: Caller
    user: User  # the token's user: the caller's, never None
    token_id: int
    machine: Machine | None
    token_last_used_is_stale: bool


def predict_grant_for_token(
    *, raw_token: str, machine_id: Any, address: str | None = None
) -> PredictGrant | None:
    """The bearer token check and `access_machine_to_predict` in one query (the token's rules
    are accounts' `token_grant`), or None when the token is unknown, revoked, expired or its
    user deactivated (401). The model and its active version are deferred instances: any other
    field loads on first use."""
    grant = token_grant(
        raw_token=raw_token,
        target=Machine,
        target_id=machine_id,
        # The threshold too: serving reads it on every answer (served_version).
        columns=("o.team_id", "v.id", "v.number", "v.threshold"),
        joins=f"LEFT JOIN {ModelVersion._meta.db_table} v ON v.id = o.active_version_id",
        address=address,
    )
    if grant is None:
        return None
    machine = None
    if grant.role is not None:
        require_role_action(grant.role, Action.VIEW)
        team_id, version_id, number, threshold = grant.values
        machine_pk = parse_id(machine_id)
        machine = deferred_instance(
            Machine, id=machine_pk, team_id=team_id, active_version_id=version_id
        )
        if version_id is not None:
            machine.active_version = deferred_instance(
                ModelVersion,
                id=version_id,
                machine_id=machine_pk,
                number=number,
                threshold=threshold,
            )
    return PredictGrant(
        caller=grant.caller,
        user=grant.user,
        token_id=grant.token_id,
        machine=machine,
        token_last_used_is_stale=grant.token_last_used_is_stale,
    )


def access_run(*, caller: Caller, id: Any, action: Action = Action.VIEW) -> TrainingRun:
    return access_team_object(
        TrainingRun.objects.select_related("job", "machine", "version"),
        caller=caller,
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
            files.materialise_artifact(record["artifact"]),
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
    return (
        ModelVersion.objects.filter(machine=machine)
        .select_related("run", "created_by")
        .prefetch_related("aliases")
    )


def aliases_for_machine(*, machine: Machine) -> QuerySet[ModelAlias]:
    """The model's aliases by name, each with its version's number and who set it."""
    return ModelAlias.objects.filter(machine=machine).select_related("version", "updated_by")


def alias_history(*, machine: Machine) -> QuerySet[ModelAliasEvent]:
    """Every move of the model's aliases, newest first."""
    return ModelAliasEvent.objects.filter(machine=machine).select_related("actor")


def retraining_decisions(*, machine: Machine) -> QuerySet[RetrainingDecision]:
    """The model's champion/challenger decisions, newest first."""
    return RetrainingDecision.objects.filter(machine=machine).select_related(
        "candidate", "champion"
    )


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
    # The status is read after the run, never taken from the machine's row (annotated when
    # the request began): a run that ended in between would otherwise be answered as
    # "succeeded" beside a model still "training", and a client stops polling on that.
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


def left_out_columns(*, machine: Machine) -> list[dict[str, Any]]:
    """The columns of the model's dataset that are neither its inputs nor its outputs, each
    with why (input_plan's rows); none once the dataset is deleted, and none for a model of
    images (its input is the image, its output the dataset's labels or masks)."""
    if machine.dataset is None or machine.is_image_model:
        return []
    plan = input_plan(
        dataset=machine.dataset, outputs=machine.output_names, inputs=list(machine.inputs)
    )
    return [row for row in plan if not row["included"]]


def _left_out_reason(column: dict[str, Any]) -> str:
    role = column.get("role")
    role_reason = str(column.get("role_reason") or "")
    if role == "ignore":
        return str(_IGNORE_REASONS.get(role_reason) or role_reason or _("suggested to be ignored"))
    if role == "output_candidate":
        return _("suggested as an output (%(reason)s)") % {"reason": role_reason}
    return _("left out by you")
