"""Image models: what one learns, the request a run keeps, and a run's work with the vision
engine (engine.vision, issue 16).

A model of an image dataset has one input, `image`, and one output, given by the dataset's
task: `label` (classification, optimised for accuracy) or `mask` (segmentation, Dice). Nothing
else can be learnt from an image set, so a client that asks for other inputs, outputs or
metrics gets a 400 naming what is allowed, rather than a model that cannot train. The budget is
a level (1-5, the same budgets as tables) or seconds; the level also chooses the architecture,
image size and members (engine.vision.LEVELS). A budget in seconds trains the largest level
whose budget fits in it.

A run keeps its request as a dict with `"kind": "images"` (TrainingRun.spec), is trained by
`vision_run_work`, reports per-epoch curves live (TrainingRun.score_curve = {"kind": "epochs",
"curves": ...}) and a log line per epoch and member, and records its version through
versions.vision_version_create. Cancelling keeps each member's best epoch, as tables keep the
best model found so far.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from mlmanager.core.errors import ApplicationError
from mlmanager.datasets.models import Dataset
from mlmanager.engine.training.spec import MAX_BUDGET_S, MIN_BUDGET_S
from mlmanager.engine.training.validation import format_duration
from mlmanager.engine.vision import (
    LEVELS,
    VisionError,
    VisionOutcome,
    VisionProgress,
    VisionSpec,
)
from mlmanager.jobs.runner import JobCancelled, JobContext
from mlmanager.jobs.services import job_is_cancel_requested
from mlmanager.machines import files
from mlmanager.machines.models import IMAGE_TASKS, Machine, ModelVersion, TrainingRun
from mlmanager.machines.services.machines import Configuration, resolve_budget
from mlmanager.machines.services.training import (
    RUN_UPDATE_MIN_INTERVAL_S,
    RunWatch,
    training_settle_attempt,
)
from mlmanager.machines.services.versions import finite_or_none, json_safe, vision_version_create

logger = logging.getLogger(__name__)

IMAGE_KIND = "images"  # the `kind` of an image run's spec, as Dataset.Kind.IMAGES
IMAGE_INPUT = "image"
# The one output a model of an image set predicts, by the dataset's task.
IMAGE_OUTPUTS: dict[str, dict[str, str]] = {
    "classification": {"name": "label", "task": "classification", "metric": "accuracy"},
    "segmentation": {"name": "mask", "task": "segmentation", "metric": "dice"},
}
# The job log gets one line per epoch and member up to this many (a level-5 ensemble trains a
# few hundred epochs in all; the page shows the whole log).
EPOCH_LOG_MAX = 2000


def is_image_dataset(dataset: Dataset) -> bool:
    return bool(dataset.is_images)


def train_vision(*args: Any, **kwargs: Any) -> VisionOutcome:
    """engine.vision.train_vision, imported when a run starts: it loads torch and MONAI, which
    the web process (that imports this module for its pages) must never load."""
    from mlmanager.engine.vision import train_vision as train

    return train(*args, **kwargs)


def max_epochs_setting() -> int | None:
    """MLMANAGER_VISION_MAX_EPOCHS caps every member's epochs (tests and demos set it small;
    unset in production, where the level, early stopping and the budget decide)."""
    value = settings.MLMANAGER_VISION_MAX_EPOCHS
    return int(value) if value else None


def image_output(dataset: Dataset) -> dict[str, str]:
    """The output a model of this image set predicts, from the task its processing detected."""
    task = ((dataset.profile or {}).get("images") or {}).get("task")
    if task not in IMAGE_OUTPUTS:
        raise ApplicationError(
            _("The task of these images is unknown: process the dataset again."),
            code="image_task_unknown",
        )
    return dict(IMAGE_OUTPUTS[task])


def _allowed(output: dict[str, str]) -> str:
    return _("“%(name)s” (task %(task)s, metric %(metric)s)") % output


def _check_inputs(inputs: list[str] | None) -> None:
    if inputs is not None and list(dict.fromkeys(inputs)) != [IMAGE_INPUT]:
        message = _("A model of images has one input, “%(input)s”.") % {"input": IMAGE_INPUT}
        raise ApplicationError(
            message, code="invalid_image_inputs", details={"inputs": [IMAGE_INPUT]}
        )


def _check_outputs(outputs: Any, metric: str | None, expected: dict[str, str]) -> None:
    """`outputs` as sent (names or {name, task, metric}) must be the one expected output;
    `metric`, when given, its metric."""
    items = outputs if isinstance(outputs, list) else [outputs]
    items = [{"name": item} if isinstance(item, str) else item for item in items]
    matches = len(items) == 1 and (
        isinstance(items[0], dict)
        and not set(items[0]) - {"name", "task", "metric"}
        and all(items[0].get(key) in (None, "", expected[key]) for key in ("task", "metric"))
        and items[0].get("name") == expected["name"]
    )
    if not matches or metric not in (None, "", expected["metric"]):
        message = _(
            "This dataset's images are for %(task)s: a model of it predicts %(allowed)s, "
            "nothing else."
        ) % {"task": expected["task"], "allowed": _allowed(expected)}
        raise ApplicationError(
            message, code="invalid_image_outputs", details={"outputs": [expected]}
        )


def configure_image_model(
    *,
    dataset: Dataset,
    outputs: Any,
    inputs: list[str] | None,
    metric: str | None,
    level: int | None,
    time_budget_s: int | None,
) -> Configuration:
    """machines._configure for an image set: the input and the output are fixed by the
    dataset (checked, not chosen); the budget is a level or seconds, as for tables. The
    tabular checks (engine.training.validate_spec) do not apply: there are no columns."""
    expected = image_output(dataset)
    _check_inputs(inputs)
    _check_outputs(outputs, metric, expected)
    level, budget = resolve_budget(level, time_budget_s)
    _check_budget(budget)
    return Configuration(
        inputs=[IMAGE_INPUT], outputs=[expected], level=level, time_budget_s=budget
    )


def _check_budget(budget_s: int) -> None:
    """The bounds tables have (engine.training.spec), in the same words."""
    if budget_s < MIN_BUDGET_S:
        raise ApplicationError(
            _("A budget of %(budget)s is too short; training needs at least %(least)s.")
            % {"budget": format_duration(budget_s), "least": format_duration(MIN_BUDGET_S)},
            code="budget_too_small",
        )
    if budget_s > MAX_BUDGET_S:
        raise ApplicationError(
            _("A budget of %(budget)s is more than the %(most)s limit.")
            % {"budget": format_duration(budget_s), "most": format_duration(MAX_BUDGET_S)},
            code="budget_too_large",
        )


def require_matching_kind(*, machine: Machine, dataset: Dataset) -> None:
    """An image model trains on images and a table model on a table: a model whose dataset is
    (now) of the other kind is refused with a 400 rather than failing in the engine."""
    if machine.is_image_model == is_image_dataset(dataset):
        return
    message = (
        _("This model learns from images, but its dataset is a table.")
        if machine.is_image_model
        else _("This model learns from a table, but its dataset is a set of images.")
    )
    raise ApplicationError(
        f"{message} {_('Create a new model from the dataset instead.')}", code="dataset_kind"
    )


def vision_level(level: int | None, time_budget_s: float) -> int:
    """The engine level of a model: its own, or for a budget in seconds the largest level
    whose budget fits in it (level 1 for shorter ones: the smallest network, stopped by the
    budget)."""
    if level is not None:
        return level
    fitting = [number for number, shape in LEVELS.items() if shape.budget_s <= time_budget_s]
    return max(fitting, default=min(LEVELS))


def vision_spec(
    *, machine: Machine, dataset: Dataset, seed: int = 0, max_epochs: int | None = None
) -> VisionSpec:
    """The engine's request for a model of images, checked against the dataset again (its
    task may have changed since the model was made)."""
    configure_image_model(
        dataset=dataset,
        outputs=list(machine.outputs),
        inputs=list(machine.inputs),
        metric=None,
        level=machine.level,
        time_budget_s=None if machine.level is not None else machine.time_budget_s,
    )
    task = image_output(dataset)["task"]
    return VisionSpec(
        task=task,
        level=vision_level(machine.level, machine.time_budget_s),
        time_budget_s=float(machine.time_budget_s),
        seed=seed,
        max_epochs=max_epochs,
    )


def vision_spec_to_json(spec: VisionSpec, *, dataset_id: int) -> dict[str, Any]:
    """`spec` as a run keeps it (TrainingRun.spec). `inputs` and `outputs` have the shape of a
    tabular run's, so what reads any run (pages, version records) reads this one too."""
    output = IMAGE_OUTPUTS[spec.task]
    return {
        "kind": IMAGE_KIND,
        "inputs": [[IMAGE_INPUT, "image"]],
        "outputs": [dict(output)],
        "task": spec.task,
        "level": spec.level,
        "time_budget_s": spec.time_budget_s,
        "seed": spec.seed,
        "max_epochs": spec.max_epochs,
        "dataset_id": dataset_id,
    }


def vision_spec_from_json(data: dict[str, Any]) -> VisionSpec:
    return VisionSpec(
        task=data["task"],
        level=data["level"],
        time_budget_s=data["time_budget_s"],
        seed=data["seed"],
        max_epochs=data.get("max_epochs"),
    )


def _number(value: Any) -> str:
    number = finite_or_none(value)
    return "–" if number is None else f"{number:.4g}"


def epoch_log_line(member: str, point: dict[str, Any], *, metric: str) -> str:
    """One job log line per epoch of a member: losses and the metric, training and validation."""
    return _(
        "%(member)s · epoch %(epoch)s: loss %(train_loss)s (validation %(val_loss)s), "
        "%(metric)s %(train_metric)s (validation %(val_metric)s)"
    ) % {
        "member": member,
        "epoch": point.get("epoch"),
        "train_loss": _number(point.get("train_loss")),
        "val_loss": _number(point.get("val_loss")),
        "metric": metric,
        "train_metric": _number(point.get("train_metric")),
        "val_metric": _number(point.get("val_metric")),
    }


class VisionWatch(RunWatch):
    """What the vision engine calls back while it trains: progress and a log line per epoch
    and member to the job, the curves and counters to the run (at most every
    RUN_UPDATE_MIN_INTERVAL_S, so the page's live updates show them), and whether to stop."""

    def __init__(self, context: JobContext, run: TrainingRun, dataset_id: int) -> None:
        super().__init__(context, run, dataset_id)
        output: dict[str, Any] = next(iter(run.spec.get("outputs") or []), {})
        self.metric = str(output.get("metric", ""))
        self.curves: dict[str, list[dict[str, Any]]] = {}
        self._logged: dict[str, int] = {}  # member -> last epoch logged
        self._lines = 0
        self._last_run_update = 0.0

    def on_progress(self, progress: VisionProgress) -> None:
        share = progress.elapsed_s / progress.budget_s if progress.budget_s else 0.0
        message = progress.message or _("%(member)s, epoch %(epoch)s") % {
            "member": progress.member,
            "epoch": progress.epoch,
        }
        if progress.curves:
            self.curves = json_safe(progress.curves)
        # The run first: the job's progress and log lines are what make pages refresh (live
        # events), and they then read these curves.
        now = time.monotonic()
        if now - self._last_run_update >= RUN_UPDATE_MIN_INTERVAL_S:
            self._last_run_update = now
            self.save_counters()
        self.context.progress(min(99.0, max(1.0, share * 100)), message)
        self._log_epochs()

    def _log_epochs(self) -> None:
        for member, points in self.curves.items():
            for point in points:
                epoch = point.get("epoch")
                if not isinstance(epoch, int) or epoch <= self._logged.get(member, 0):
                    continue
                self._logged[member] = epoch
                self._lines += 1
                if self._lines <= EPOCH_LOG_MAX:
                    self.context.log(epoch_log_line(member, point, metric=self.metric))
                elif self._lines == EPOCH_LOG_MAX + 1:
                    self.context.log(
                        _("More epochs are trained; only the first %(count)s are logged.")
                        % {"count": EPOCH_LOG_MAX}
                    )

    def best(self) -> tuple[float | None, str]:
        """The best validation metric of any member so far, and that member."""
        found: tuple[float | None, str] = (None, "")
        for member, points in self.curves.items():
            for point in points:
                value = finite_or_none(point.get("val_metric"))
                if value is not None and (found[0] is None or value > found[0]):
                    found = (value, member)
        return found

    def save_counters(self) -> None:
        """The curves so far on the run; `candidates` counts the epochs trained."""
        best_score, best_member = self.best()
        TrainingRun.objects.filter(pk=self.run.pk).update(
            candidates=sum(len(points) for points in self.curves.values()),
            best_score=best_score,
            best_estimator=best_member[:100],
            score_curve={"kind": "epochs", "curves": self.curves},
        )


def vision_run_work(
    context: JobContext, *, run: TrainingRun, dataset: Dataset, parquet: Path
) -> dict[str, Any]:
    """training_run_work for an image model (its run and dataset already checked): train the
    members on the dataset's Parquet file (`parquet`, held by the caller), then record a
    version, active unless cancelled. Files appear only complete, as for tables."""
    machine = run.machine
    if not is_image_dataset(dataset):  # re-processed as a table since the run started
        raise ApplicationError(
            _("The dataset is no longer a set of images. Create a new model from it."),
            code="dataset_kind",
        )
    spec = vision_spec_from_json(run.spec)
    partial = files.run_partial_dir(machine.storage_dir, run.pk)
    files.remove_dir(partial)  # a retried job's
    workdir = files.run_workdir(partial)
    workdir.mkdir(parents=True)
    watch = VisionWatch(context, run, dataset.pk)
    context.progress(1, _("Starting the training"), force=True)
    output = IMAGE_OUTPUTS[spec.task]
    context.log(
        _(
            "Training %(output)s (%(task)s, %(metric)s) from %(images)s images at level "
            "%(level)s, budget %(budget)s s."
        )
        % {
            "output": output["name"],
            "task": spec.task,
            "metric": output["metric"],
            "images": dataset.row_count,
            "level": spec.level,
            "budget": spec.time_budget_s,
        }
    )
    failure: ApplicationError | None = None
    outcome: VisionOutcome | None = None
    try:
        outcome = train_vision(
            parquet,
            spec,
            workdir=workdir,
            artifact_key=files.artifact_key(),
            on_progress=watch.on_progress,
            should_cancel=watch.should_cancel,
        )
    except VisionError as error:
        failure = ApplicationError(error.message, code=error.code)
    except BaseException:
        context.check_still_claimed()  # the folder is a later attempt's now: leave it
        files.remove_dir(partial)
        watch.check_existence()
        if watch.gone:  # the data vanished under the engine: say so, not "internal error"
            raise ApplicationError(watch.gone) from None
        raise
    context.check_still_claimed()  # from here on, files and the version are this attempt's
    watch.save_counters()  # the last epochs' curves
    watch.check_existence()
    if watch.gone:
        failure = ApplicationError(watch.gone)
    cancelled = job_is_cancel_requested(job_id=context.job_id)
    if failure is not None or outcome is None:
        files.remove_dir(partial)
        if cancelled and not watch.gone:  # stopped before any member had an epoch
            context.log(_("Cancelled before a model was found."))
            raise JobCancelled()
        raise failure or ApplicationError(_("The training ended without a model."))
    return _record(context, run, outcome, cancelled=cancelled or outcome.status == "cancelled")


def _record(
    context: JobContext, run: TrainingRun, outcome: VisionOutcome, *, cancelled: bool
) -> dict[str, Any]:
    trained = [member for member in outcome.members if member.get("best_epoch")]
    epochs = sum(int(member.get("epochs") or 0) for member in outcome.members)
    networks = ngettext("%(members)s network", "%(members)s networks", len(outcome.members)) % {
        "members": len(outcome.members)
    }
    context.log(
        ngettext(
            "%(epochs)s epoch trained over %(networks)s in %(seconds).1f s.",
            "%(epochs)s epochs trained over %(networks)s in %(seconds).1f s.",
            epochs,
        )
        % {"epochs": epochs, "networks": networks, "seconds": outcome.elapsed_s}
    )
    if not trained:
        files.remove_dir(files.run_partial_dir(run.machine.storage_dir, run.pk))
        if cancelled:
            context.log(_("Cancelled before a model was found."))
            raise JobCancelled()
        raise ApplicationError(
            _(
                "No model could be trained within the time budget. "
                "Choose a higher level or a longer budget."
            ),
            code="no_model",
        )
    version = vision_version_create(
        run=run,
        outcome=outcome,
        kind=ModelVersion.Outcome.CANCELLED if cancelled else ModelVersion.Outcome.SUCCEEDED,
        activate=not cancelled,
    )
    for member in outcome.members:
        context.log(
            _(
                "%(member)s (%(architecture)s): best validation %(metric)s %(value)s at epoch "
                "%(epoch)s of %(epochs)s."
            )
            % {
                "member": member.get("name"),
                "architecture": member.get("architecture"),
                "metric": outcome.metric,
                "value": _number(member.get("val_metric")),
                "epoch": member.get("best_epoch") or "–",
                "epochs": member.get("epochs"),
            }
        )
    context.log(
        _("%(metric)s of the ensemble on the held-out images: %(value)s.")
        % {"metric": outcome.metric, "value": _number(outcome.metrics.get(outcome.metric))}
    )
    if cancelled:
        context.log(
            _(
                "Cancelled. The best epoch of each member was kept as version %(number)s; "
                "it is not active."
            )
            % {"number": version.number}
        )
        raise JobCancelled()
    context.log(_("Version %(number)s is now active.") % {"number": version.number})
    training_settle_attempt(context)  # cancelled and failed runs settle in training_run_end
    return {"machine_id": run.machine_id, "run_id": run.pk, "version": version.number}


__all__ = [
    "IMAGE_OUTPUTS",
    "IMAGE_TASKS",
    "configure_image_model",
    "is_image_dataset",
    "require_matching_kind",
    "vision_run_work",
    "vision_spec",
]
