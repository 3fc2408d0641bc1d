"""The Job row: the truth about every long operation, whatever queue carries it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from mlmanager.core.models import TeamOwnedModel
from mlmanager.core.registries import job_kinds


def validate_kind(value: str) -> None:
    """Kinds are registered by the apps (core.registries.job_kinds), not listed here: a new
    kind needs no migration of this table."""
    if value not in job_kinds:
        raise ValidationError(_("Unknown job kind: %(kind)s"), params={"kind": value})


class Job(TeamOwnedModel):
    """One long operation (dataset processing, training, batch prediction...).

    Moves queued -> running -> succeeded | failed | cancelled, each move a conditional UPDATE so
    two workers can never both run it. `kind` is one of the registered job kinds; `subject` is
    what the job works on (a dataset, a training run, a batch), of that kind's subject model.
    `result` references what the job produced.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    FINISHED_STATUSES = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=40, validators=[validate_kind])
    # Null only for jobs whose subject is gone or was never recorded (rows older than subjects).
    subject_type = models.ForeignKey(
        ContentType, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    subject_id = models.PositiveBigIntegerField(null=True, blank=True)
    subject = GenericForeignKey("subject_type", "subject_id")
    description = models.CharField(max_length=200, blank=True)
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    progress = models.PositiveSmallIntegerField(default=0)
    message = models.CharField(max_length=300, blank=True)
    log = models.TextField(blank=True)
    error = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)
    cancel_requested = models.BooleanField(default=False)
    task_id = models.CharField(max_length=64, blank=True)
    # What the queue carries, kept so the reaper can send the job again (a broker that lost
    # its message, a worker that died): the django-tasks Task's module path and its kwargs.
    queue = models.CharField(max_length=40, blank=True)
    task_path = models.CharField(max_length=200, blank=True)
    task_kwargs = models.JSONField(default=dict, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    # How many times the reaper put this job back in the queue after its worker died.
    requeues = models.PositiveSmallIntegerField(default=0)
    # Whether the owner of the work (a dataset, a training run, a batch) was told the job ended
    # unsuccessfully: told once, however many duplicate messages arrive later.
    owner_notified = models.BooleanField(default=False)
    worker = models.CharField(max_length=200, blank=True)  # Worker.name of who ran it
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["subject_type", "subject_id"], name="job_subject")]
        constraints = [
            models.CheckConstraint(condition=models.Q(progress__lte=100), name="job_progress_max")
        ]

    def __str__(self) -> str:
        return f"{self.kind_label} #{self.pk} ({self.status})"

    @property
    def kind_label(self) -> Any:
        # A kind whose app was removed still shows, by its name.
        return job_kinds.get(self.kind).label if self.kind in job_kinds else self.kind

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED_STATUSES

    @property
    def is_cancellable(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)

    @property
    def log_lines(self) -> list[str]:
        return self.log.splitlines()

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or self.heartbeat_at or self.started_at
        return (end - self.started_at).total_seconds()


class Worker(models.Model):
    """A process that runs jobs (EasyAutoML's "Server"): registered when it starts, heartbeating
    while it lives. Platform infrastructure, not owned by a team; staff see it in the admin."""

    class Backend(models.TextChoices):
        DATABASE = "database", _("Database queue")
        CELERY = "celery", _("Celery")

    name = models.CharField(max_length=200, unique=True)  # hostname:pid, as Job.worker
    hostname = models.CharField(max_length=200)
    pid = models.PositiveIntegerField()
    backend = models.CharField(max_length=20, choices=Backend.choices)
    queues = models.JSONField(default=list)
    cpu_count = models.PositiveIntegerField(default=0)
    memory_bytes = models.BigIntegerField(default=0)
    gpus = models.JSONField(default=list, blank=True)  # [{"name": .., "memory_bytes": ..}]
    started_at = models.DateTimeField()
    heartbeat_at = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True, blank=True)
    current_job = models.ForeignKey(
        Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-heartbeat_at"]

    def __str__(self) -> str:
        return self.name


class PeriodicSlot(models.Model):
    """One row per periodic task and time slot: whoever inserts it runs the slot, so periodic
    work runs exactly once per slot however many schedulers are running."""

    name = models.CharField(max_length=100)
    slot = models.BigIntegerField()  # seconds since 1970 // interval
    claimed_by = models.CharField(max_length=200)
    claimed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["name", "slot"], name="periodic_slot_once")]

    def __str__(self) -> str:
        return f"{self.name} slot {self.slot} ({self.claimed_by})"


def heartbeat_fresh_since(now: datetime | None = None) -> datetime:
    """The oldest heartbeat that still counts as alive: MLMANAGER_JOB_STALE_S before `now`.
    The one cutoff the reaper, the worker counts and the admin's "alive" column share."""
    return (now or timezone.now()) - timedelta(seconds=settings.MLMANAGER_JOB_STALE_S)
