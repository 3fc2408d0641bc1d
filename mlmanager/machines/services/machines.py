"""Creating, changing and deleting models, and turning a model into the engine's TrainingSpec."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from mlmanager.accounts.caller import Caller
from mlmanager.audit.models import AuditAction
from mlmanager.audit.services import audit_record
from mlmanager.core.errors import ApplicationError, Conflict, NotFound
from mlmanager.datasets.models import Dataset
from mlmanager.datasets.selectors import require_columns, require_dataset_ready
from mlmanager.engine.training import (
    DEFAULT_METRIC,
    LEVEL_BUDGET_S,
    OutputSpec,
    TrainingError,
    TrainingSpec,
    infer_task,
    validate_spec,
)
from mlmanager.jobs.services import job_cancel
from mlmanager.machines import files, selectors
from mlmanager.machines.models import Machine, TrainingRun, machine_storage_dir

logger = logging.getLogger(__name__)

DEFAULT_LEVEL = 1


@dataclass(frozen=True)
class Configuration:
    """What to learn and for how long, checked against a dataset's profile."""

    inputs: list[str]
    outputs: list[dict[str, str]]
    level: int | None
    time_budget_s: int


def training_error(error: TrainingError) -> ApplicationError:
    """The engine's refusal, in its own words, as a 400 with its stable code."""
    return ApplicationError(error.message, code=error.code)


def require_ready_dataset(dataset: Dataset | None) -> Dataset:
    if dataset is None:
        raise Conflict(
            _("The dataset of this model was deleted. Create a new model from another dataset."),
            code="dataset_missing",
        )
    return require_dataset_ready(dataset=dataset)


def _invalid(message: str, field: str) -> ApplicationError:
    return ApplicationError(message, code="invalid", details={field: [message]})


def _output_items(outputs: Any) -> list[dict[str, Any]]:
    """Outputs as sent: column names, or objects {name, task?, metric?}."""
    if not isinstance(outputs, list) or not outputs:
        raise ApplicationError(
            _("Choose at least one column to predict."),
            code="no_outputs",
            details={"outputs": [_("At least one column name is required.")]},
        )
    items = []
    for item in outputs:
        if isinstance(item, str):
            item = {"name": item}
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("name"), str)
            or set(item) - {"name", "task", "metric"}
            or any(not isinstance(item.get(key, ""), str) for key in ("task", "metric"))
        ):
            raise _invalid(
                _(
                    "Each output is a column name, or an object with a name and optionally "
                    "a task and a metric."
                ),
                "outputs",
            )
        items.append(item)
    return items


def _resolve_outputs(dataset: Dataset, outputs: Any, metric: str | None) -> list[dict[str, str]]:
    columns = {column["name"]: column for column in dataset.columns}
    resolved = []
    for item in _output_items(outputs):
        name = item["name"]
        if name not in columns:
            raise ApplicationError(
                _("The dataset has no column “%(name)s”.") % {"name": name},
                code="unknown_column",
                details={"outputs": [name]},
            )
        try:
            task = item.get("task") or infer_task(columns[name])
        except TrainingError as error:
            raise training_error(error) from None
        resolved.append(
            {
                "name": name,
                "task": task,
                "metric": item.get("metric") or metric or DEFAULT_METRIC.get(task, ""),
            }
        )
    return resolved


def resolve_budget(level: int | None, time_budget_s: int | None) -> tuple[int | None, int]:
    if level is not None and time_budget_s is not None:
        raise _invalid(_("Give a level or a time budget in seconds, not both."), "level")
    if time_budget_s is not None:
        return None, time_budget_s
    level = DEFAULT_LEVEL if level is None else level
    if level not in LEVEL_BUDGET_S:
        raise ApplicationError(
            _("The level must be between %(low)s and %(high)s.")
            % {"low": min(LEVEL_BUDGET_S), "high": max(LEVEL_BUDGET_S)},
            code="invalid_level",
            details={"level": sorted(LEVEL_BUDGET_S)},
        )
    return level, LEVEL_BUDGET_S[level]


def training_spec(
    *,
    dataset: Dataset,
    inputs: list[str],
    outputs: list[dict[str, str]],
    time_budget_s: float,
    seed: int = 0,
    max_candidates: int | None = None,
) -> TrainingSpec:
    """The engine's request for these choices, checked against the dataset's profile."""
    types = {column["name"]: column.get("type", "") for column in dataset.columns}
    require_columns(dataset=dataset, names=inputs, field="inputs")
    spec = TrainingSpec(
        inputs=[(name, types[name]) for name in inputs],
        outputs=[OutputSpec(**output) for output in outputs],
        time_budget_s=time_budget_s,
        seed=seed,
        max_candidates=max_candidates,
    )
    try:
        validate_spec(spec, dataset.profile)
    except TrainingError as error:
        raise training_error(error) from None
    return spec


def training_spec_to_json(spec: TrainingSpec, *, dataset_id: int) -> dict[str, Any]:
    """`spec` as a run keeps it (TrainingRun.spec), with the dataset it was checked against:
    the job trains on what was asked at the start, whatever changes on the model meanwhile."""
    return {
        "inputs": [list(pair) for pair in spec.inputs],
        "outputs": [
            {"name": output.name, "task": output.task, "metric": output.metric}
            for output in spec.outputs
        ],
        "time_budget_s": spec.time_budget_s,
        "seed": spec.seed,
        "max_candidates": spec.max_candidates,
        "dataset_id": dataset_id,
    }


def training_spec_from_json(data: dict[str, Any]) -> TrainingSpec:
    """The TrainingSpec a run kept (training_spec_to_json), unchecked: it was when kept."""
    return TrainingSpec(
        inputs=[(name, kind) for name, kind in data["inputs"]],
        outputs=[OutputSpec(**output) for output in data["outputs"]],
        time_budget_s=data["time_budget_s"],
        seed=data["seed"],
        max_candidates=data["max_candidates"],
    )


def _configure(
    *,
    dataset: Dataset,
    outputs: Any,
    inputs: list[str] | None,
    metric: str | None,
    level: int | None,
    time_budget_s: int | None,
) -> Configuration:
    # Imported here: the vision services import this module.
    from mlmanager.machines.services import vision

    if vision.is_image_dataset(dataset):
        return vision.configure_image_model(
            dataset=dataset,
            outputs=outputs,
            inputs=inputs,
            metric=metric,
            level=level,
            time_budget_s=time_budget_s,
        )
    resolved_outputs = _resolve_outputs(dataset, outputs, metric)
    output_names = [output["name"] for output in resolved_outputs]
    if inputs is None:
        inputs = selectors.default_inputs(dataset=dataset, outputs=output_names)
    inputs = list(dict.fromkeys(inputs))  # keep the order, drop repeats
    level, budget = resolve_budget(level, time_budget_s)
    training_spec(dataset=dataset, inputs=inputs, outputs=resolved_outputs, time_budget_s=budget)
    return Configuration(inputs=inputs, outputs=resolved_outputs, level=level, time_budget_s=budget)


def machine_create(
    *,
    caller: Caller,
    dataset: Dataset,
    outputs: Any,
    name: str = "",
    description: str = "",
    inputs: list[str] | None = None,
    level: int | None = None,
    time_budget_s: int | None = None,
    metric: str | None = None,
    train: bool = False,
) -> Machine:
    """A model of `dataset`'s team that predicts `outputs` from `inputs`.

    Outputs are column names or `{name, task, metric}`; the task is inferred from the column
    when not given, the metric is `metric` or the task's default. Inputs default to the
    profile's suggested inputs. Everything is checked against the profile now, so a model
    that exists can be trained. With `train`, its first training is queued in the same
    transaction: a model is never left half-started.
    """
    user = caller.user
    require_ready_dataset(dataset)
    configuration = _configure(
        dataset=dataset,
        outputs=outputs,
        inputs=inputs,
        metric=metric,
        level=level,
        time_budget_s=time_budget_s,
    )
    default_name = _("%(outputs)s from %(dataset)s") % {
        "outputs": ", ".join(output["name"] for output in configuration.outputs),
        "dataset": dataset.name,
    }
    machine = Machine(
        team_id=dataset.team_id,
        created_by=user,
        name=((name or "").strip() or default_name)[:200],
        description=(description or "").strip(),
        dataset=dataset,
        inputs=configuration.inputs,
        outputs=configuration.outputs,
        level=configuration.level,
        time_budget_s=configuration.time_budget_s,
        storage_dir=machine_storage_dir(dataset.team_id),
    )
    machine.full_clean()
    with transaction.atomic():
        machine.save()
        if train:
            # Imported here: the training services import this module.
            from mlmanager.machines.services.training import training_start

            training_start(caller=caller, machine=machine)
    logger.info("model %s created on dataset %s by user %s", machine.pk, dataset.pk, caller.user_id)
    return machine


_UNSET: Any = object()


def machine_update(
    *,
    machine: Machine,
    name: str | None = None,
    description: str | None = None,
    outputs: Any = _UNSET,
    inputs: list[str] | None = None,
    level: int | None = None,
    time_budget_s: int | None = None,
    metric: str | None = None,
    dataset: Dataset | None = None,
    caller: Caller | None = None,
) -> Machine:
    """Changes what is given. New outputs reset the inputs to the default unless inputs are
    given too; a new metric applies to every output. A running training keeps the choices it
    started with. A new `dataset` (of the model's team: the caller checked it) must have every
    input and output column with a compatible type (400 `incompatible_dataset`); the change
    is audited (`caller`)."""
    fields = ["updated_at"]
    previous_dataset_id = machine.dataset_id
    if dataset is not None and dataset.pk != machine.dataset_id:
        if dataset.team_id != machine.team_id:  # pragma: no cover - the caller's lookup is scoped
            raise NotFound()
        _require_compatible(machine=machine, dataset=dataset)
        machine.dataset = dataset
        fields.append("dataset")
    if name is not None:
        if not name.strip():
            raise _invalid(_("The name cannot be empty."), "name")
        machine.name = name.strip()[:200]
        fields.append("name")
    if description is not None:
        machine.description = description.strip()
        fields.append("description")
    changes_spec = (
        outputs is not _UNSET
        or inputs is not None
        or level is not None
        or time_budget_s is not None
        or metric is not None
    )
    if changes_spec:
        from mlmanager.machines.services.vision import require_matching_kind  # imports this

        dataset = require_ready_dataset(machine.dataset)
        # An image model stays one (and a table model too): its versions, predictions and
        # pages are of its kind.
        require_matching_kind(machine=machine, dataset=dataset)
        if outputs is _UNSET:
            outputs = [
                {"name": output["name"], "task": output["task"]}
                if metric is not None
                else dict(output)
                for output in machine.outputs
            ]
            if inputs is None:
                inputs = list(machine.inputs)
        if level is None and time_budget_s is None:
            # Keep the budget as it was chosen: a level, or seconds.
            level = machine.level
            time_budget_s = machine.time_budget_s if machine.level is None else None
        configuration = _configure(
            dataset=dataset,
            outputs=outputs,
            inputs=inputs,
            metric=metric,
            level=level,
            time_budget_s=time_budget_s,
        )
        machine.inputs = configuration.inputs
        machine.outputs = configuration.outputs
        machine.level = configuration.level
        machine.time_budget_s = configuration.time_budget_s
        fields += ["inputs", "outputs", "level", "time_budget_s"]
    machine.full_clean()
    with transaction.atomic():
        machine.save(update_fields=fields)
        if "dataset" in fields:
            if caller is None:  # pragma: no cover - a programming error
                raise RuntimeError("Changing a model's dataset needs the caller, for the audit.")
            audit_record(
                caller=caller,
                team=machine.team,
                action=AuditAction.MODEL_DATASET_CHANGED,
                target=machine,
                changes={"dataset": (previous_dataset_id, machine.dataset_id)},
            )
    return machine


# Column types that can stand for each other when a model moves to another dataset: a model
# trained on numbers reads numbers, one trained on labels reads labels. Columns with one value
# or none fit any.
_TYPE_FAMILIES = {
    "numeric": "number",
    "integer": "number",
    "categorical": "label",
    "boolean": "label",
    "text": "label",
    "identifier": "label",
    "datetime": "datetime",
    "json": "json",
}


def dataset_compatibility(*, machine: Machine, dataset: Dataset) -> dict[str, Any]:
    """What keeps `machine` from learning from `dataset`: its input and output columns the
    dataset lacks, and those whose type there is of another family than in the model's
    dataset (or, that one gone, than its active version recorded). Empty lists: compatible."""
    needed = [*machine.inputs, *machine.output_names]
    found = {column["name"]: column.get("type", "") for column in dataset.columns}
    reference: dict[str, str] = {}
    if machine.dataset is not None:
        reference = {column["name"]: column.get("type", "") for column in machine.dataset.columns}
    elif machine.active_version is not None:
        reference = {item["name"]: item.get("type", "") for item in machine.active_version.inputs}
    missing = [name for name in needed if name not in found]
    mistyped = []
    for name in needed:
        if name not in found or name not in reference:
            continue
        before, after = _TYPE_FAMILIES.get(reference[name]), _TYPE_FAMILIES.get(found[name])
        if before and after and before != after:
            mistyped.append({"name": name, "expected": reference[name], "found": found[name]})
    return {"missing_columns": missing, "mistyped_columns": mistyped}


def _require_compatible(*, machine: Machine, dataset: Dataset) -> None:
    from mlmanager.machines.services.vision import require_matching_kind  # imports this

    require_ready_dataset(dataset)
    require_matching_kind(machine=machine, dataset=dataset)
    problems = dataset_compatibility(machine=machine, dataset=dataset)
    if problems["missing_columns"] or problems["mistyped_columns"]:
        parts = []
        if problems["missing_columns"]:
            parts.append(
                _("missing columns: %(names)s") % {"names": ", ".join(problems["missing_columns"])}
            )
        if problems["mistyped_columns"]:
            parts.append(
                _("columns of another type: %(names)s")
                % {"names": ", ".join(item["name"] for item in problems["mistyped_columns"])}
            )
        raise ApplicationError(
            _("This dataset does not fit the model (%(problems)s).")
            % {"problems": "; ".join(parts)},
            code="incompatible_dataset",
            details=problems,
        )


def machines_move_to_dataset(*, caller: Caller, source: Dataset, target: Dataset) -> list[int]:
    """Point every model of `source` at `target` (a new version of it: same columns, more
    rows), audited per model, in the caller's transaction. Returns the models' ids."""
    moved = list(Machine.objects.filter(dataset=source).order_by("pk").select_related("team"))
    if not moved:
        return []
    Machine.objects.filter(pk__in=[machine.pk for machine in moved]).update(dataset=target)
    for machine in moved:
        audit_record(
            caller=caller,
            team=machine.team,
            action=AuditAction.MODEL_DATASET_CHANGED,
            target=machine,
            changes={"dataset": (source.pk, target.pk)},
            details={"reason": "dataset_version"},
        )
    logger.info(
        "models %s moved from dataset %s to %s", [m.pk for m in moved], source.pk, target.pk
    )
    return [machine.pk for machine in moved]


def machine_delete(*, caller: Caller, machine: Machine) -> None:
    """Deletes the model with its runs and versions and, after commit, its files. A training
    still running is cancelled; it notices the model is gone and leaves nothing behind."""
    for run in TrainingRun.objects.filter(machine=machine, is_active=True).select_related("job"):
        if run.job.is_cancellable:
            job_cancel(job=run.job)
    storage_dir = machine.storage_dir
    with transaction.atomic():
        deleted, _rows = Machine.objects.filter(pk=machine.pk).delete()
        if not deleted:
            raise NotFound()
        # The instance keeps its pk (the queryset deleted the row): the record's target id.
        audit_record(
            caller=caller, team=machine.team, action=AuditAction.MODEL_DELETED, target=machine
        )
        transaction.on_commit(lambda: files.remove_dir(storage_dir))
    logger.info("model %s deleted", machine.pk)
