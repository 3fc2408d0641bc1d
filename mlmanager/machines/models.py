"""Models users train (the class is Machine, as in EasyAutoML), their runs and their versions.

A Machine says what to learn (inputs, outputs, task and metric per output, a time budget) from
which dataset. Each training is a TrainingRun carried by a Job (the Job row is the truth for its
status and progress). A run that produced a model leaves a ModelVersion: signed artifacts,
metrics, leaderboard, feature importance and a reproducibility record. One version is active.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any, ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Case, OuterRef, Q, Subquery, Value, When
from django.utils.translation import gettext_lazy as _

from mlmanager.core.models import TeamOwnedModel, TeamScopedQuerySet

MIN_LEVEL = 1
MAX_LEVEL = 5
# The tasks of models trained on image datasets (engine.vision); tables' tasks are binary,
# multiclass and regression (engine.training.TASKS).
IMAGE_TASKS = ("classification", "segmentation")


def machine_storage_dir(team_id: int) -> str:
    """Server-chosen folder for a model's artifacts: nothing a client sends becomes a path."""
    return f"models/team-{team_id}/{uuid.uuid4().hex}"


class MachineQuerySet(TeamScopedQuerySet["Machine"]):
    def with_status(self) -> MachineQuerySet:
        """Annotates `status` (a Machine.Status) from the latest run's job, in the same query:
        lists show badges without a query per row."""
        from mlmanager.jobs.models import Job

        latest_run_status = Subquery(
            TrainingRun.objects.filter(machine=OuterRef("pk"))
            .order_by("-created_at", "-pk")
            .values("job__status")[:1]
        )
        return self.annotate(latest_run_status=latest_run_status).annotate(
            status=Case(
                When(
                    latest_run_status__in=[Job.Status.QUEUED, Job.Status.RUNNING],
                    then=Value(Machine.Status.TRAINING),
                ),
                When(active_version__isnull=False, then=Value(Machine.Status.READY)),
                When(latest_run_status=Job.Status.FAILED, then=Value(Machine.Status.FAILED)),
                default=Value(Machine.Status.UNTRAINED),
                output_field=models.CharField(),
            )
        )


MachineManager = models.Manager.from_queryset(MachineQuerySet)


class Machine(TeamOwnedModel):
    """A model a team trains from one of its datasets (users see "model").

    `outputs` holds one `{name, task, metric}` per predicted column, `inputs` the column names
    used as features. A model of an image dataset has the input `image` and one output, `label`
    (classification) or `mask` (segmentation), from the dataset's task (services.vision).
    `time_budget_s` is the effective budget: the level's (1-5) when `level` is set, else the
    one the user chose. The dataset may be deleted; the model and its versions stay, but it
    cannot be trained again until it points at data.
    """

    class Status(models.TextChoices):
        UNTRAINED = "untrained", _("Not trained")
        TRAINING = "training", _("Training")
        READY = "ready", _("Ready")
        FAILED = "failed", _("Failed")

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    dataset = models.ForeignKey(
        "datasets.Dataset",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="machines",
    )
    inputs = models.JSONField(default=list, blank=True)
    outputs = models.JSONField(default=list)
    level = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text=_("1-5, each a time budget; empty when set in seconds.")
    )
    time_budget_s = models.PositiveIntegerField(help_text=_("Wall-clock limit of a training."))
    storage_dir = models.CharField(max_length=200, unique=True)
    active_version = models.ForeignKey(
        "machines.ModelVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # The experimenter: per output, an expression over the inputs that answers predictions
    # while the model has no version (machines.services.experimenter); {} when none.
    experimenter_rules = models.JSONField(default=dict, blank=True)
    experimenter_updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    experimenter_updated_at = models.DateTimeField(null=True, blank=True)

    objects: ClassVar[MachineManager] = MachineManager()  # type: ignore[assignment]

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(level__isnull=True) | Q(level__gte=MIN_LEVEL, level__lte=MAX_LEVEL),
                name="machine_level_range",
            ),
            models.CheckConstraint(
                condition=Q(time_budget_s__gt=0), name="machine_time_budget_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def status_label(self) -> str:
        """The label of the `status` MachineQuerySet.with_status() annotates."""
        return str(self.Status(getattr(self, "status", self.Status.UNTRAINED)).label)

    @property
    def output_names(self) -> list[str]:
        return [output["name"] for output in self.outputs]

    @property
    def is_image_model(self) -> bool:
        """Whether this model learns from images (its one output has an image task): pages
        show its epochs and members instead of a search's candidates."""
        return any(output.get("task") in IMAGE_TASKS for output in self.outputs)


class RunPurpose(models.TextChoices):
    """Why a training run was started (TrainingRun.purpose)."""

    MANUAL = "manual", _("Started by a person")
    RETRAINING = "retraining", _("Scheduled retraining")
    RERUN = "rerun", _("Re-run of an earlier run")


class TrainingRun(TeamOwnedModel):
    """One training of a Machine, carried by its Job.

    `spec` is the request as it was when the run started (inputs with their types, outputs,
    budget), so editing the model later never changes what a run did. `is_active` is true from
    start until the work ends; the database allows one active run per model. `candidates`,
    `best_score` and `best_estimator` follow the search while it runs.
    """

    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="runs")
    job = models.OneToOneField("jobs.Job", on_delete=models.CASCADE, related_name="training_run")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    spec = models.JSONField(default=dict)
    seed = models.PositiveIntegerField(default=0)
    time_budget_s = models.PositiveIntegerField()
    max_candidates = models.PositiveIntegerField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    candidates = models.PositiveIntegerField(default=0)
    best_score = models.FloatField(null=True, blank=True)
    best_estimator = models.CharField(max_length=100, blank=True)
    # The best search score of each output over time: {"eval_method": "cv" | "holdout",
    # "outputs": {name: [[seconds since start, score], ...]}}, for the run's chart.
    score_curve = models.JSONField(default=dict, blank=True)
    # Why the run was started: a retraining run's version waits for the champion/challenger
    # decision (services.retraining) instead of becoming active.
    purpose = models.CharField(max_length=12, choices=RunPurpose.choices, default=RunPurpose.MANUAL)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["machine"],
                condition=Q(is_active=True),
                name="machine_one_active_run",
            )
        ]

    def __str__(self) -> str:
        return f"Run #{self.pk} of {self.machine_id}"


class ModelVersion(TeamOwnedModel):
    """What a run produced: numbered per model, with signed artifacts under `storage_dir`.

    `outputs` holds per predicted column its task, metric, holdout `metrics` (with the curves
    the page draws), `baseline` (the same metrics for the training rows' majority class or
    mean; absent in versions recorded before it existed), `leaderboard`,
    `feature_importance`, `best_estimator`, and the artifact's path (relative to the media
    root) and signature. `inputs` lists the `{name, type}` the model expects, with what
    training saw where known (`min`, `max`, `categories`: predictions.schema.recorded_inputs;
    absent in versions recorded before it existed). `outcome` tells
    whether the run completed or was cancelled with the best model found so far kept.
    `threshold` is the only field that changes after the version is recorded: the owner's
    decision threshold for its two-class outputs. A version of an image model records instead,
    for its one output, `members`, `classes`, `image_size`, `channels`, `artifact_dir` (the
    folder of model.json and the members' safetensors), `signatures` (file name -> HMAC) and
    the per-epoch `curves` (versions.vision_version_create).
    """

    class Outcome(models.TextChoices):
        SUCCEEDED = "succeeded", _("Completed")
        CANCELLED = "cancelled", _("Kept from a cancelled run")

    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="versions")
    run = models.OneToOneField(
        TrainingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="version"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    number = models.PositiveIntegerField()
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    storage_dir = models.CharField(max_length=200, unique=True)
    inputs = models.JSONField(default=list)
    outputs = models.JSONField(default=list)
    reproducibility = models.JSONField(default=dict, blank=True)
    threshold = models.FloatField(
        null=True,
        blank=True,
        help_text=_(
            "Decision threshold of two-class outputs: the positive class is predicted when its "
            "probability is at least this; empty: the more probable class."
        ),
    )

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["machine", "number"], name="model_version_number_unique"
            ),
            models.CheckConstraint(condition=Q(number__gte=1), name="model_version_number_min"),
            models.CheckConstraint(
                condition=Q(threshold__isnull=True) | Q(threshold__gt=0, threshold__lt=1),
                name="model_version_threshold_range",
            ),
        ]

    def __str__(self) -> str:
        return f"v{self.number} of {self.machine_id}"

    @property
    def is_image_model(self) -> bool:
        """Whether this version is of a model of images (see Machine.is_image_model)."""
        return any(output.get("task") in IMAGE_TASKS for output in self.outputs)

    @property
    def has_binary_output(self) -> bool:
        """Whether a decision threshold applies to any output of this version."""
        return any(output.get("task") == "binary" for output in self.outputs)

    @property
    def scores(self) -> list[dict[str, Any]]:
        """Per output, the optimised metric and its holdout value (for lists and summaries)."""
        return [
            {
                "name": output["name"],
                "metric": output["metric"],
                "value": (output.get("metrics") or {}).get(output["metric"]),
            }
            for output in self.outputs
        ]


# --- aliases and retraining (issue 18) -------------------------------------------------------

ALIAS_NAME_MAX_LENGTH = 40


class ModelAlias(TeamOwnedModel):
    """A name of one version of a model (`champion`, `challenger`, `staging`…), so clients can
    predict with `?alias=champion` while the version behind it changes. One row per name and
    model, moved in place (services.aliases.alias_set); every move leaves a ModelAliasEvent."""

    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="aliases")
    name = models.CharField(max_length=ALIAS_NAME_MAX_LENGTH)
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="aliases")
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["machine", "name"], name="model_alias_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name} of {self.machine_id}"


class ModelAliasEvent(TeamOwnedModel):
    """One move of an alias: the version it now names (null: the alias was deleted) and the
    one it named before (null: it was new), who moved it and why. Never edited."""

    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="alias_events")
    alias = models.CharField(max_length=ALIAS_NAME_MAX_LENGTH)
    version_number = models.PositiveIntegerField(null=True, blank=True)
    previous_version_number = models.PositiveIntegerField(null=True, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["machine", "-created_at"], name="model_alias_event_machine"),
        ]

    def __str__(self) -> str:
        return f"{self.alias}: v{self.previous_version_number} -> v{self.version_number}"


class RetrainingPolicy(TeamOwnedModel):
    """When a model retrains by itself: on a schedule (daily or weekly at `at_time` in
    `time_zone`, on `weekday` for weekly; 0 is Monday) and/or once `after_new_rows` rows were
    added to its data. `last_slot_at` is the schedule slot (UTC) last started and
    `rows_at_last_start` the data's row count then: conditional updates on them make each
    slot, and each growth of the data, start one run however many schedulers run."""

    class Schedule(models.TextChoices):
        OFF = "off", _("No schedule")
        DAILY = "daily", _("Daily")
        WEEKLY = "weekly", _("Weekly")

    machine = models.OneToOneField(
        Machine, on_delete=models.CASCADE, related_name="retraining_policy"
    )
    enabled = models.BooleanField(default=False)
    schedule = models.CharField(max_length=8, choices=Schedule.choices, default=Schedule.OFF)
    at_time = models.TimeField(default=datetime.time(3, 0))
    weekday = models.PositiveSmallIntegerField(default=0)
    time_zone = models.CharField(max_length=64, default="UTC")
    after_new_rows = models.PositiveIntegerField(null=True, blank=True)
    last_slot_at = models.DateTimeField(null=True, blank=True)
    last_started_at = models.DateTimeField(null=True, blank=True)
    rows_at_last_start = models.BigIntegerField(null=True, blank=True)
    last_run = models.ForeignKey(
        TrainingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_error = models.TextField(blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(weekday__lte=6), name="retraining_policy_weekday_range"
            ),
            models.CheckConstraint(
                condition=Q(after_new_rows__isnull=True) | Q(after_new_rows__gte=1),
                name="retraining_policy_after_new_rows_min",
            ),
        ]

    def __str__(self) -> str:
        return f"Retraining of {self.machine_id}"


class RetrainingDecision(TeamOwnedModel):
    """The champion/challenger decision at the end of a retraining run: both versions' scores
    on the same fresh holdout rows (services.retraining), in the metric of the model's first
    output, and whether the candidate became the active version (`promoted`) or was kept as
    the challenger. `champion` is null when the model had no active version."""

    machine = models.ForeignKey(
        Machine, on_delete=models.CASCADE, related_name="retraining_decisions"
    )
    run = models.OneToOneField(
        TrainingRun,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="retraining_decision",
    )
    candidate = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="+")
    champion = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    output = models.CharField(max_length=200, blank=True)
    metric = models.CharField(max_length=40, blank=True)
    candidate_score = models.FloatField(null=True, blank=True)
    champion_score = models.FloatField(null=True, blank=True)
    holdout_rows = models.PositiveIntegerField(null=True, blank=True)
    promoted = models.BooleanField()
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"Decision on v{self.candidate_id} of {self.machine_id}"
