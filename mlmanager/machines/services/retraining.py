"""Scheduled retraining with champion/challenger.

**When.** A model's RetrainingPolicy starts a run (`training_start`, marked `purpose =
"retraining"`) when its schedule's slot comes — daily or weekly at `at_time` in the policy's
time zone, within SCHEDULE_WINDOW after the slot (a scheduler restarting does not skip it) —
or once `after_new_rows` rows were added to the model's data: the current dataset's
`row_count` minus the rows the active version's run trained on (the run's
`spec["dataset"]["rows"]`, else its dataset's `row_count`), counting from the last retraining
start when that is later (so a run kept as challenger does not start another each minute).
The `machines.retraining` periodic task looks every minute. Each slot and each growth of the
data starts one run however many schedulers run: the start is claimed by a conditional UPDATE
of `last_slot_at` / `rows_at_last_start` from the value read, which one scheduler wins. A
model already training is left alone (its slot is tried again next minute, within the window);
a start the platform refuses (no dataset, a quota) is kept in `last_error`.

**The decision** (`run_finished`, called by training's `_record` when a run's version is
recorded; a retraining run's version is recorded *inactive*). Both the candidate (the new
version) and the champion (the active version) are scored on the same rows:

- the *candidate's holdout*: the rows of the candidate's dataset the engine set aside (its
  `split_holdout` with the run's seed, over the rows that have a value for the output), which
  the candidate's measured model never trained on;
- of those, only the *fresh* ones: rows added since the champion's training. Dataset versions
  only ever append rows (a version's file is its parent's rows then the added ones), so when
  the candidate's dataset is the champion's dataset or a version of the same family
  (`lineage`), the fresh rows are those at positions at or past the number of rows the
  champion trained on; when the model was pointed at an unrelated dataset the champion never
  saw, every holdout row is fresh.

The candidate is scored with its *checkpoint* — the model the search measured, which never saw
the holdout — rather than the model refitted on all rows that it ships (that one trained on
these rows too); the champion with the model it ships (it never saw rows added after its
training). The metric is the model's first output's. The candidate is promoted (activated,
alias `champion`) only when it is strictly better; otherwise it is kept under the alias
`challenger`. Fewer than MIN_FRESH_ROWS fresh rows (a schedule that ran on unchanged data),
a score that cannot be computed, or a champion that changed while the candidate was scored,
keep it as challenger, with the reason. With no active version the candidate is promoted.
Every decision is a RetrainingDecision row with both scores, and an audit event.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import zoneinfo
from collections.abc import Callable
from datetime import datetime, time, timedelta
from pathlib import PurePosixPath
from typing import Any

import numpy as np
import pandas as pd
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from mlmanager.accounts.caller import Caller
from mlmanager.audit.models import AuditAction
from mlmanager.audit.services import audit_record
from mlmanager.core.errors import ApplicationError
from mlmanager.core.schedules import latest_slot
from mlmanager.datasets.models import Dataset
from mlmanager.engine.training import TrainedModel, load_model
from mlmanager.engine.training.data import encode_labels, label_indices, split_holdout
from mlmanager.engine.training.metrics import score
from mlmanager.engine.training.spec import higher_is_better
from mlmanager.jobs.models import Job
from mlmanager.machines import files
from mlmanager.machines.models import (
    Machine,
    ModelVersion,
    RetrainingDecision,
    RetrainingPolicy,
    RunPurpose,
    TrainingRun,
)
from mlmanager.machines.services.aliases import CHALLENGER, CHAMPION, alias_set
from mlmanager.machines.services.versions import version_activate

logger = logging.getLogger(__name__)

# A slot is started when a scheduler looks within this long after it.
SCHEDULE_WINDOW = timedelta(hours=1)
# Fewer fresh holdout rows than this decide nothing: the candidate is kept as challenger.
MIN_FRESH_ROWS = 10
RUNNING_STATUSES = (Job.Status.QUEUED, Job.Status.RUNNING)
POLICY_FIELDS = ("enabled", "schedule", "at_time", "weekday", "time_zone", "after_new_rows")
SCHEDULE_FIELDS = ("enabled", "schedule", "at_time", "weekday", "time_zone")


def interval_s() -> float:
    return 60.0


def clock() -> datetime:
    """Now (tests fix it)."""
    return timezone.now()


def retraining_task() -> None:
    """The `machines.retraining` periodic task."""
    retraining_start_due(now=clock())


# --- the policy --------------------------------------------------------------------------------


def retraining_policy_of(*, machine: Machine) -> RetrainingPolicy:
    """The model's policy, or an unsaved one that is off (what the API and page show)."""
    policy = RetrainingPolicy.objects.filter(machine=machine).first()
    if policy is None:
        policy = RetrainingPolicy(team_id=machine.team_id, machine=machine)
    return policy


def _invalid(message: str, field: str) -> ApplicationError:
    return ApplicationError(message, code="invalid_retraining", details={"field": field})


def _check(policy: RetrainingPolicy, machine: Machine) -> None:
    if policy.schedule not in RetrainingPolicy.Schedule.values:
        raise _invalid(_("schedule must be off, daily or weekly."), "schedule")
    if not isinstance(policy.weekday, int) or not 0 <= policy.weekday <= 6:
        raise _invalid(_("weekday must be 0 (Monday) to 6 (Sunday)."), "weekday")
    if not isinstance(policy.at_time, time):
        raise _invalid(_("at_time must be a time of day, HH:MM."), "at_time")
    if policy.time_zone not in zoneinfo.available_timezones():
        raise _invalid(_("time_zone must be a time zone such as Europe/Paris."), "time_zone")
    if policy.after_new_rows is not None and (
        not isinstance(policy.after_new_rows, int) or policy.after_new_rows < 1
    ):
        raise _invalid(_("after_new_rows must be 1 or more, or null."), "after_new_rows")
    if policy.enabled:
        if machine.is_image_model:
            raise ApplicationError(
                _("Scheduled retraining is for models of tables; this model learns from images."),
                code="retraining_unsupported",
            )
        if policy.schedule == RetrainingPolicy.Schedule.OFF and policy.after_new_rows is None:
            raise _invalid(
                _("Choose a schedule or a number of new rows to retrain after."), "schedule"
            )


@transaction.atomic
def retraining_policy_update(
    *, caller: Caller, machine: Machine, **fields: Any
) -> RetrainingPolicy:
    """Create or change the model's policy (fields: POLICY_FIELDS); audited. A new policy's
    time zone is its author's. A changed schedule starts from its next slot, never from one
    that has just passed."""
    unknown = set(fields) - set(POLICY_FIELDS)
    if unknown:  # pragma: no cover - the interfaces pass known fields
        raise ValueError(f"unknown policy fields {sorted(unknown)}")
    policy = RetrainingPolicy.objects.select_for_update().filter(machine=machine).first()
    created = policy is None
    if policy is None:
        user_zone = getattr(caller.user, "time_zone", "") or "UTC"
        policy = RetrainingPolicy(team_id=machine.team_id, machine=machine, time_zone=user_zone)
    changes: dict[str, tuple[Any, Any]] = {}
    for name, value in fields.items():
        before = getattr(policy, name)
        if created or before != value:
            changes[name] = (_plain(before), _plain(value))
            setattr(policy, name, value)
    _check(policy, machine)
    if not changes and not created:
        return policy
    if created or any(name in changes for name in SCHEDULE_FIELDS):
        policy.last_slot_at = schedule_slot(policy=policy, now=clock())
    policy.updated_by = caller.user
    policy.full_clean(exclude=["machine", "team", "last_run", "updated_by"])
    policy.save()
    audit_record(
        caller=caller,
        team=machine.team,
        action=AuditAction.MODEL_RETRAINING_CHANGED,
        target=machine,
        changes=changes,
        details={"model": machine.name},
    )
    return policy


def _plain(value: Any) -> Any:
    return value.strftime("%H:%M") if isinstance(value, time) else value


def schedule_slot(*, policy: RetrainingPolicy, now: datetime) -> datetime | None:
    """The latest moment at or before `now` the schedule is due (UTC): `at_time` in the
    policy's time zone, on its weekday for a weekly one; None without a schedule."""
    if policy.schedule == RetrainingPolicy.Schedule.OFF:
        return None
    weekly = policy.schedule == RetrainingPolicy.Schedule.WEEKLY
    return latest_slot(
        now=now,
        at=policy.at_time,
        time_zone=policy.time_zone,
        weekday=policy.weekday if weekly else None,
    )


# --- starting runs -----------------------------------------------------------------------------


def trained_rows(run: TrainingRun | None) -> int | None:
    """How many rows of its dataset a run trained from: its spec's record, else the dataset's
    row count now (None when neither is known)."""
    if run is None:
        return None
    recorded = (run.spec or {}).get("dataset") or {}
    if isinstance(recorded.get("rows"), int):
        return int(recorded["rows"])
    dataset_id = recorded.get("id", (run.spec or {}).get("dataset_id"))
    if not isinstance(dataset_id, int):
        return None
    count = Dataset.objects.filter(pk=dataset_id).values_list("row_count", flat=True).first()
    return int(count) if count is not None else None


def new_rows(*, machine: Machine, policy: RetrainingPolicy | None = None) -> int | None:
    """Rows added to the model's data since the active version's training (or since the last
    retraining start, when later); None when the model has no dataset."""
    dataset = machine.dataset
    if dataset is None or dataset.row_count is None:
        return None
    champion = machine.active_version
    baseline = (trained_rows(champion.run) if champion is not None else 0) or 0
    if policy is not None and policy.rows_at_last_start is not None:
        baseline = max(baseline, policy.rows_at_last_start)
    return int(dataset.row_count) - baseline


def retraining_start_due(*, now: datetime | None = None) -> list[TrainingRun]:
    """Start the retraining runs that are due (see the module's docstring); the runs started."""
    now = now or clock()
    started = []
    policies = (
        RetrainingPolicy.objects.filter(enabled=True)
        .select_related(
            "updated_by",
            "machine__team",
            "machine__created_by",
            "machine__dataset",
            "machine__active_version__run",
        )
        .order_by("pk")
    )
    for policy in policies:
        try:
            run = _start_if_due(policy, now=now)
        except Exception:  # one model's trouble never stops the others'
            logger.exception("model %s: retraining check failed", policy.machine_id)
            continue
        if run is not None:
            started.append(run)
    return started


def _claim(policy: RetrainingPolicy, *, now: datetime) -> str | None:
    """Why the policy's model retrains now ("schedule" or "rows"), once claimed; None."""
    slot = schedule_slot(policy=policy, now=now)
    if (
        slot is not None
        and timedelta(0) <= now - slot < SCHEDULE_WINDOW
        and (policy.last_slot_at is None or policy.last_slot_at < slot)
    ):
        claimed = (
            RetrainingPolicy.objects.filter(pk=policy.pk)
            .filter(Q(last_slot_at__isnull=True) | Q(last_slot_at__lt=slot))
            .update(last_slot_at=slot)
        )
        if claimed:
            return "schedule"
    if policy.after_new_rows is not None:
        added = new_rows(machine=policy.machine, policy=policy)
        if added is not None and added >= policy.after_new_rows:
            read = policy.rows_at_last_start
            same = (
                Q(rows_at_last_start__isnull=True) if read is None else Q(rows_at_last_start=read)
            )
            dataset = policy.machine.dataset
            assert dataset is not None  # new_rows is None without one
            claimed = RetrainingPolicy.objects.filter(same, pk=policy.pk).update(
                rows_at_last_start=dataset.row_count
            )
            if claimed:
                return "rows"
    return None


def _start_if_due(policy: RetrainingPolicy, *, now: datetime) -> TrainingRun | None:
    machine = policy.machine
    busy = TrainingRun.objects.filter(
        machine=machine, is_active=True, job__status__in=RUNNING_STATUSES
    ).exists()
    if busy:
        return None
    why = _claim(policy, now=now)
    if why is None:
        return None
    from mlmanager.machines.services.training import training_start  # it imports this module

    rows = machine.dataset.row_count if machine.dataset is not None else None
    # The run is the platform's, on behalf of whoever set the policy up (a job has an author).
    author = policy.updated_by or machine.created_by
    try:
        if author is None or not author.is_active:
            raise ApplicationError(
                _("Nobody who set up this retraining is still active: save its settings again."),
                code="retraining_without_author",
            )
        with transaction.atomic():
            run = training_start(caller=Caller.acting_for(author), machine=machine)
            # Before the commit that queues its job: the work sees a retraining run.
            TrainingRun.objects.filter(pk=run.pk).update(purpose=RunPurpose.RETRAINING)
            run.purpose = RunPurpose.RETRAINING
            RetrainingPolicy.objects.filter(pk=policy.pk).update(
                last_started_at=now,
                last_run=run,
                last_error="",
                rows_at_last_start=rows,
            )
    except ApplicationError as error:
        RetrainingPolicy.objects.filter(pk=policy.pk).update(last_error=error.message[:2000])
        logger.info("model %s: retraining (%s) not started: %s", machine.pk, why, error.message)
        return None
    logger.info("model %s: retraining run %s started (%s)", machine.pk, run.pk, why)
    return run


# --- the decision ------------------------------------------------------------------------------


@dataclasses.dataclass
class Comparison:
    """Both versions' scores on the same fresh holdout rows, or why there are none."""

    champion: ModelVersion | None
    output: str = ""
    metric: str = ""
    candidate_score: float | None = None
    champion_score: float | None = None
    holdout_rows: int | None = None
    problem: str = ""


def run_finished(
    *,
    run: TrainingRun,
    version: ModelVersion,
    log: Callable[[str], object] | None = None,
) -> RetrainingDecision | None:
    """After a run's version was recorded: for a retraining run, decide champion/challenger
    (see the module's docstring); nothing for other runs. Never raises for a scoring problem:
    the version stays, kept as challenger, with the reason."""
    if run.purpose != RunPurpose.RETRAINING:
        return None
    active_id = (
        Machine.objects.filter(pk=run.machine_id).values_list("active_version", flat=True).first()
    )
    champion = (
        ModelVersion.objects.filter(pk=active_id).select_related("run").first()
        if active_id is not None
        else None
    )
    try:
        comparison = compare(candidate=version, champion=champion, run=run)
    except Exception:
        logger.exception("model %s: run %s could not be scored", run.machine_id, run.pk)
        comparison = Comparison(
            champion=champion,
            problem=_("The versions could not be scored on the fresh holdout rows."),
        )
    decision = _decide(run=run, candidate=version, comparison=comparison)
    if log is not None:
        log(decision.reason)
    return decision


def _first_output(version: ModelVersion) -> dict[str, Any]:
    return dict(version.outputs[0]) if version.outputs else {}


def compare(
    *, candidate: ModelVersion, champion: ModelVersion | None, run: TrainingRun
) -> Comparison:
    """The candidate's and the champion's scores on the candidate's fresh holdout rows."""
    output = _first_output(candidate)
    name, task, metric = output.get("name", ""), output.get("task", ""), output.get("metric", "")
    comparison = Comparison(champion=champion, output=name, metric=metric)
    if champion is None:
        comparison.candidate_score = _finite((output.get("metrics") or {}).get(metric))
        return comparison
    if candidate.is_image_model or champion.is_image_model:
        comparison.problem = _("Versions of image models are not compared.")
        return comparison
    champion_output = next((item for item in champion.outputs if item.get("name") == name), None)
    if champion_output is None:
        comparison.problem = _("The active version does not predict “%(name)s”.") % {"name": name}
        return comparison
    dataset_id = (run.spec or {}).get("dataset_id")
    dataset = Dataset.objects.filter(pk=dataset_id).first() if isinstance(dataset_id, int) else None
    if dataset is None:
        comparison.problem = _("The candidate's dataset was deleted.")
        return comparison
    candidate_model = _measured_model(candidate, output)
    champion_model = _shipped_model(champion_output)
    columns = sorted({*candidate_model.input_columns, *champion_model.input_columns, name})
    frame = pd.read_parquet(files.materialise(dataset.parquet_path), columns=columns)
    positions = holdout_positions(frame[name], task=task, seed=run.seed)
    facts = (candidate.reproducibility.get("outputs") or {}).get(name) or {}
    expected = facts.get("holdout_rows")
    if isinstance(expected, int) and expected != len(positions):
        comparison.problem = _("The candidate's holdout rows could not be found again.")
        return comparison
    fresh = positions[positions >= _seen_rows(champion=champion, dataset=dataset)]
    comparison.holdout_rows = len(fresh)
    if len(fresh) < MIN_FRESH_ROWS:
        comparison.problem = _(
            "Only %(count)s of the candidate's holdout rows were added since the active "
            "version was trained (at least %(minimum)s are needed to compare them)."
        ) % {"count": len(fresh), "minimum": MIN_FRESH_ROWS}
        return comparison
    rows = frame.iloc[fresh].reset_index(drop=True)
    target_candidate, keep_candidate = _target(rows[name], candidate_model)
    target_champion, keep_champion = _target(rows[name], champion_model)
    keep = keep_candidate & keep_champion
    rows = rows.loc[keep].reset_index(drop=True)
    comparison.holdout_rows = len(rows)
    comparison.candidate_score = _score(
        metric, target_candidate[keep], candidate_model.predictions(rows)
    )
    comparison.champion_score = _score(
        metric, target_champion[keep], champion_model.predictions(rows)
    )
    if comparison.candidate_score is None or comparison.champion_score is None:
        comparison.problem = _(
            "%(metric)s cannot be computed on the fresh holdout rows (one class only?)."
        ) % {"metric": metric}
    return comparison


def holdout_positions(target: pd.Series, *, task: str, seed: int) -> np.ndarray:
    """The positions (in the dataset's file) of the rows the engine set aside as the holdout
    of an output: the same selection of rows with a value and the same `split_holdout` as
    engine.training.data.read_training_data."""
    present = target.notna().to_numpy()
    if target.dtype == object or pd.api.types.is_string_dtype(target.dtype):
        present = present & target.astype(str).str.strip().ne("").to_numpy()
    values = target[present].reset_index(drop=True)
    if task == "regression":
        encoded = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    else:
        encoded, _classes = encode_labels(values)
    _train, holdout = split_holdout(encoded, task=task, seed=seed)
    return np.sort(np.flatnonzero(present)[holdout])


def _family(dataset_id: Any) -> tuple[int | None, int | None]:
    if not isinstance(dataset_id, int):
        return None, None
    row = Dataset.objects.filter(pk=dataset_id).values_list("pk", "lineage").first()
    return (row[0], row[1]) if row else (None, None)


def _seen_rows(*, champion: ModelVersion, dataset: Dataset) -> int:
    """The positions of `dataset` below which the champion may have trained on a row: the rows
    it trained on when `dataset` is its dataset or a version of the same family (versions only
    append), else 0 (it never saw this dataset)."""
    spec = champion.run.spec if champion.run is not None else {}
    recorded = (spec or {}).get("dataset") or {}
    champion_dataset = recorded.get("id", (spec or {}).get("dataset_id"))
    pk, lineage = _family(champion_dataset)
    related = champion_dataset == dataset.pk or (
        pk is not None and (dataset.lineage or dataset.pk) == (lineage or pk)
    )
    if not related:
        return 0
    rows = trained_rows(champion.run)
    # Unknown: assume it saw every row, so nothing is counted as fresh.
    return rows if rows is not None else int(dataset.row_count or 0)


def _measured_model(version: ModelVersion, output: dict[str, Any]) -> TrainedModel:
    """The model the search measured on the holdout: the checkpoint its status file names when
    the version ships a model refitted on all rows (holdout included), else the shipped one."""
    if not output.get("refit_on_all_rows"):
        return _shipped_model(output)
    folder = str(PurePosixPath(output["artifact"]).parent)
    with files.materialise(f"{folder}/status.json").open(encoding="utf-8") as handle:
        checkpoint = (json.load(handle) or {}).get("checkpoint") or {}
    name = PurePosixPath(str(checkpoint["path"])).name
    return load_model(
        files.materialise_artifact(f"{folder}/{name}"),
        key=files.artifact_key(),
        signature=checkpoint["signature"],
    )


def _shipped_model(output: dict[str, Any]) -> TrainedModel:
    return load_model(
        files.materialise_artifact(output["artifact"]),
        key=files.artifact_key(),
        signature=output["artifact_signature"],
    )


def _target(values: pd.Series, model: TrainedModel) -> tuple[np.ndarray, np.ndarray]:
    """The target as `model` encodes it, and which rows it can be scored on."""
    if model.task == "regression":
        target = pd.to_numeric(values, errors="coerce").to_numpy(np.float64)
        return target, np.isfinite(target)
    target = label_indices(values, model.classes or [])
    return target, target >= 0


def _score(metric: str, target: np.ndarray, predictions: np.ndarray) -> float | None:
    try:
        value = score(metric, target, predictions)
    except ValueError:
        return None
    return _finite(value)


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and np.isfinite(value) else None


def _better(metric: str, candidate: float, champion: float) -> bool:
    return candidate > champion if higher_is_better(metric) else candidate < champion


@transaction.atomic
def _decide(
    *, run: TrainingRun, candidate: ModelVersion, comparison: Comparison
) -> RetrainingDecision:
    machine = Machine.objects.select_for_update().select_related("team").get(pk=run.machine_id)
    champion = comparison.champion
    numbers = {"candidate": candidate.number, "champion": champion.number if champion else None}
    scores = {
        "metric": comparison.metric,
        "candidate": _shown(comparison.candidate_score),
        "champion": _shown(comparison.champion_score),
        "rows": comparison.holdout_rows,
    }
    promoted = False
    if machine.active_version_id != (champion.pk if champion else None):
        reason = (
            _("Kept as challenger: the active version changed while v%(candidate)s was scored.")
            % numbers
        )
    elif champion is None:
        promoted = True
        reason = _("v%(candidate)s is active: the model had no active version.") % numbers
    elif comparison.problem:
        reason = (
            _("v%(candidate)s kept as challenger; v%(champion)s stays active.") % numbers
            + " "
            + comparison.problem
        )
    else:
        assert comparison.candidate_score is not None and comparison.champion_score is not None
        promoted = _better(comparison.metric, comparison.candidate_score, comparison.champion_score)
        template = (
            _(
                "v%(candidate)s is active: %(metric)s %(candidate_score)s beats v%(champion)s's "
                "%(champion_score)s on %(rows)s fresh holdout rows."
            )
            if promoted
            else _(
                "v%(candidate)s kept as challenger: %(metric)s %(candidate_score)s does not beat "
                "v%(champion)s's %(champion_score)s on %(rows)s fresh holdout rows."
            )
        )
        reason = template % {
            **numbers,
            "metric": comparison.metric,
            "candidate_score": scores["candidate"],
            "champion_score": scores["champion"],
            "rows": comparison.holdout_rows,
        }
    system = Caller.system()
    if promoted:
        version_activate(caller=system, machine=machine, version=candidate)
    alias_set(
        caller=None,
        machine=machine,
        alias=CHAMPION if promoted else CHALLENGER,
        version=candidate,
        reason=_("Retraining run %(run)s") % {"run": run.pk},
    )
    decision = RetrainingDecision.objects.create(
        team_id=machine.team_id,
        machine=machine,
        run=run,
        candidate=candidate,
        champion=champion,
        output=comparison.output,
        metric=comparison.metric,
        candidate_score=comparison.candidate_score,
        champion_score=comparison.champion_score,
        holdout_rows=comparison.holdout_rows,
        promoted=promoted,
        reason=reason,
    )
    audit_record(
        caller=system,
        team=machine.team,
        action=AuditAction.MODEL_RETRAINING_DECIDED,
        target=machine,
        details={"model": machine.name, "promoted": promoted, **numbers, "scores": scores},
    )
    logger.info("model %s: retraining run %s: %s", machine.pk, run.pk, reason)
    return decision


def _shown(value: float | None) -> str | None:
    return None if value is None else f"{value:.4g}"
