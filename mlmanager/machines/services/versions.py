"""Model versions: recording what a run produced, choosing the active one (rollback), and the
decision threshold of two-class outputs."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext as _

from mlmanager.accounts.caller import Caller
from mlmanager.audit.models import AuditAction
from mlmanager.audit.services import audit_record
from mlmanager.core.errors import ApplicationError
from mlmanager.datasets import files as dataset_files
from mlmanager.datasets.models import Dataset
from mlmanager.engine.training import OutputResult, TrainingOutcome
from mlmanager.machines import files
from mlmanager.machines.models import Machine, ModelVersion, TrainingRun
from mlmanager.predictions.schema import recorded_inputs

if TYPE_CHECKING:
    from mlmanager.engine.vision import VisionOutcome

logger = logging.getLogger(__name__)


def json_safe(value: Any) -> Any:
    """Engine results as plain JSON: numpy scalars become numbers, NaN and infinities null
    (PostgreSQL's jsonb and strict JSON refuse them), paths and tuples strings and lists."""
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return json_safe(value.item())
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "tolist"):  # numpy arrays
        return json_safe(value.tolist())
    return str(value)


def finite_or_none(value: Any) -> float | None:
    value = json_safe(value)
    return float(value) if isinstance(value, int | float) else None


def _output_record(result: OutputResult, *, workdir: Path, final_dir: str) -> dict[str, Any]:
    artifact = Path(result.artifact_path).resolve().relative_to(workdir.resolve())
    # The evaluation measures the baseline with the metrics; the version keeps it beside them,
    # under the same metric names.
    metrics = dict(result.metrics)
    baseline = metrics.pop("baseline", None)
    return json_safe(
        {
            "name": result.name,
            "task": result.task,
            "metric": result.metric,
            "metrics": metrics,
            "baseline": baseline,
            "leaderboard": result.leaderboard,
            "feature_importance": result.feature_importance,
            "best_estimator": result.best_estimator,
            "refit_on_all_rows": result.refit_on_all_rows,
            "artifact": f"{final_dir}/{artifact.as_posix()}",
            "artifact_signature": result.artifact_signature,
        }
    )


def version_create(
    *, run: TrainingRun, outcome: TrainingOutcome, kind: str, activate: bool
) -> ModelVersion:
    """Publish the run's folder (one rename), then record the version, end the run and, when
    asked, make the version active — in one transaction, so a version exists only with its
    files and a run that ended never looks active. `kind` is a ModelVersion.Outcome: a
    completed run, or the best model a cancelled run found so far."""
    machine = run.machine
    partial = files.run_partial_dir(machine.storage_dir, run.pk)
    final = files.run_dir(machine.storage_dir, run.pk)
    outputs = [
        _output_record(result, workdir=files.run_workdir(partial), final_dir=final)
        for result in outcome.outputs
    ]
    # What training saw of each input (range, categories): predictions warn against it.
    dataset = Dataset.objects.filter(pk=run.spec.get("dataset_id")).first()
    inputs = recorded_inputs(
        run.spec["inputs"],
        columns=dataset.columns if dataset is not None else [],
        parquet=dataset_files.materialise(dataset.parquet_path) if dataset is not None else None,
    )
    best = outputs[0] if outputs else {}
    return _publish_and_record(
        run,
        partial=partial,
        final=final,
        inputs=inputs,
        outputs=outputs,
        reproducibility=json_safe(outcome.reproducibility),
        kind=kind,
        activate=activate,
        run_fields={
            "candidates": outcome.candidates,
            "best_score": finite_or_none((best.get("metrics") or {}).get(best.get("metric"))),
            "best_estimator": str(best.get("best_estimator") or "")[:100],
        },
    )


def vision_version_create(
    *, run: TrainingRun, outcome: VisionOutcome, kind: str, activate: bool
) -> ModelVersion:
    """version_create for an image model: the engine's one artifact folder (model.json and a
    safetensors file per member, each signed) is published with the run's folder like a
    tabular artifact, and the version records, for its one output, the holdout metrics, the
    members, the classes, the image size, the folder and its signatures (contract of issue
    16, §3), with the per-epoch curves."""
    machine = run.machine
    partial = files.run_partial_dir(machine.storage_dir, run.pk)
    final = files.run_dir(machine.storage_dir, run.pk)
    workdir = files.run_workdir(partial)
    relative = Path(outcome.artifact_dir).resolve().relative_to(workdir.resolve())
    output: dict[str, Any] = next(iter(run.spec.get("outputs") or []), {})
    record = json_safe(
        {
            "name": output.get("name"),
            "task": outcome.task,
            "metric": outcome.metric,
            "metrics": outcome.metrics,
            "members": outcome.members,
            "classes": outcome.classes,
            "image_size": outcome.image_size,
            "channels": outcome.channels,
            "artifact_dir": final if relative == Path(".") else f"{final}/{relative.as_posix()}",
            "signatures": outcome.signatures,
            "curves": outcome.curves,
        }
    )
    reproducibility = json_safe({**outcome.reproducibility, "elapsed_s": outcome.elapsed_s})
    members = record["members"] or []
    best_member: dict[str, Any] = max(
        (member for member in members if finite_or_none(member.get("val_metric")) is not None),
        key=lambda member: member["val_metric"],
        default={},
    )
    return _publish_and_record(
        run,
        partial=partial,
        final=final,
        inputs=[{"name": "image", "type": "image"}],
        outputs=[record],
        reproducibility=reproducibility,
        kind=kind,
        activate=activate,
        run_fields={
            # An image run's "candidates" are the epochs its members trained.
            "candidates": sum(int(member.get("epochs") or 0) for member in members),
            "best_score": finite_or_none((record["metrics"] or {}).get(record["metric"])),
            "best_estimator": str(best_member.get("architecture") or "")[:100],
        },
    )


def _publish_and_record(
    run: TrainingRun,
    *,
    partial: str,
    final: str,
    inputs: list[dict[str, Any]],
    outputs: list[dict[str, Any]],
    reproducibility: dict[str, Any],
    kind: str,
    activate: bool,
    run_fields: dict[str, Any],
) -> ModelVersion:
    """Publish the run's folder (one rename), then record the version, end the run (with
    `run_fields`) and, when asked, activate the version, in one transaction."""
    machine = run.machine
    files.publish(partial, final)
    try:
        with transaction.atomic():
            number = (
                ModelVersion.objects.filter(machine=machine).aggregate(Max("number"))["number__max"]
                or 0
            ) + 1
            version = ModelVersion(
                team_id=machine.team_id,
                machine=machine,
                run=run,
                created_by_id=run.created_by_id,
                number=number,
                outcome=kind,
                storage_dir=final,
                inputs=inputs,
                outputs=outputs,
                reproducibility=reproducibility,
            )
            version.full_clean()
            version.save()
            TrainingRun.objects.filter(pk=run.pk).update(is_active=False, **run_fields)
            if activate:
                Machine.objects.filter(pk=machine.pk).update(active_version=version)
    except BaseException:
        files.remove_dir(final)
        raise
    logger.info(
        "model %s: run %s recorded as version %s (active: %s)",
        machine.pk,
        run.pk,
        number,
        activate,
    )
    return version


@transaction.atomic
def version_activate(*, caller: Caller, machine: Machine, version: ModelVersion) -> Machine:
    """Make `version` the one predictions use (also how a user rolls back)."""
    if version.machine_id != machine.pk:  # pragma: no cover - selectors fetch it by machine
        raise ValueError("version of another model")
    # The number as the row has it now (the instance may be older), for the record.
    previous = (
        Machine.objects.filter(pk=machine.pk)
        .values_list("active_version__number", flat=True)
        .first()
    )
    Machine.objects.filter(pk=machine.pk).update(active_version=version)
    machine.active_version = version
    if previous != version.number:
        audit_record(
            caller=caller,
            team=machine.team,
            action=AuditAction.MODEL_VERSION_ACTIVATED,
            target=version,
            changes={"active_version": (previous, version.number)},
            details={"model": machine.name},
        )
    logger.info("model %s: version %s activated", machine.pk, version.number)
    return machine


@transaction.atomic
def version_set_threshold(
    *, caller: Caller, version: ModelVersion, threshold: float | None
) -> ModelVersion:
    """Set (or with None, clear) the decision threshold of the version's two-class outputs:
    predictions in the UI, the API and batches then choose the positive class when its
    probability is at least `threshold`, instead of the more probable class."""
    if not version.has_binary_output:
        raise ApplicationError(
            _("A decision threshold applies to two-class models only."), code="not_binary"
        )
    if threshold is not None and not (
        isinstance(threshold, int | float) and math.isfinite(threshold) and 0 < threshold < 1
    ):
        raise ApplicationError(
            _("The threshold must be a number between 0 and 1 (both excluded)."),
            code="invalid_threshold",
        )
    before = version.threshold
    version.threshold = None if threshold is None else float(threshold)
    # Only the threshold changes: the rest was checked when the version was recorded (and
    # `created_by` may since have become empty, its user deleted).
    version.full_clean(
        exclude=[field.name for field in ModelVersion._meta.fields if field.name != "threshold"]
    )
    version.save(update_fields=["threshold", "updated_at"])
    if version.threshold != before:
        audit_record(
            caller=caller,
            team=version.team,
            action=AuditAction.MODEL_VERSION_THRESHOLD_CHANGED,
            target=version,
            changes={"threshold": (before, version.threshold)},
            details={"model": version.machine.name},
        )
    logger.info("model %s: version %s threshold %s", version.machine_id, version.number, threshold)
    return version
