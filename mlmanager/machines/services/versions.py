"""Model versions: recording what a run produced, and choosing the active one (rollback)."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from django.db import transaction
from django.db.models import Max

from mlmanager.engine.training import OutputResult, TrainingOutcome
from mlmanager.machines import files
from mlmanager.machines.models import Machine, ModelVersion, TrainingRun

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
    return json_safe(
        {
            "name": result.name,
            "task": result.task,
            "metric": result.metric,
            "metrics": result.metrics,
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
        _output_record(result, workdir=files.local_path(partial), final_dir=final)
        for result in outcome.outputs
    ]
    files.publish(partial, final)
    best = outputs[0] if outputs else {}
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
                inputs=[{"name": name, "type": kind} for name, kind in run.spec["inputs"]],
                outputs=outputs,
                reproducibility=json_safe(outcome.reproducibility),
            )
            version.full_clean()
            version.save()
            TrainingRun.objects.filter(pk=run.pk).update(
                is_active=False,
                candidates=outcome.candidates,
                best_score=finite_or_none((best.get("metrics") or {}).get(best.get("metric"))),
                best_estimator=str(best.get("best_estimator") or "")[:100],
            )
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


def version_activate(*, machine: Machine, version: ModelVersion) -> Machine:
    """Make `version` the one predictions use (also how a user rolls back)."""
    if version.machine_id != machine.pk:  # pragma: no cover - selectors fetch it by machine
        raise ValueError("version of another model")
    Machine.objects.filter(pk=machine.pk).update(active_version=version)
    machine.active_version = version
    logger.info("model %s: version %s activated", machine.pk, version.number)
    return machine
