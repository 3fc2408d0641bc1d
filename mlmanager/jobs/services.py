"""Job state changes. Every transition is a conditional UPDATE (works on SQLite and PostgreSQL):
it succeeds only from the expected state, so a job is claimed, finished or cancelled once."""

from __future__ import annotations

import logging
import os
import socket
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Value
from django.db.models.functions import Concat
from django.utils import timezone
from django.utils.translation import gettext as _

from mlmanager.core.errors import Conflict
from mlmanager.jobs.models import Job

logger = logging.getLogger(__name__)

MAX_LOG_LINE = 1000
# A running job whose heartbeat is older than this is taken as orphaned (its worker died).
# Work reports progress (and so heartbeats) at least every few seconds.
STALE_AFTER = timedelta(minutes=2)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def job_create(*, team: Any, created_by: Any, kind: str, description: str = "") -> Job:
    job = Job(team=team, created_by=created_by, kind=kind, description=description[:200])
    job.full_clean()
    job.save()
    return job


def job_enqueue(*, job: Job, task: Any, **task_kwargs: Any) -> None:
    """Hands the job to the queue once the surrounding transaction commits (ids only, JSON)."""

    def enqueue() -> None:
        result = task.enqueue(job_id=job.pk, **task_kwargs)
        Job.objects.filter(pk=job.pk).update(task_id=str(result.id))

    transaction.on_commit(enqueue)


def job_claim(*, job_id: int, worker: str) -> bool:
    now = timezone.now()
    return bool(
        Job.objects.filter(pk=job_id, status=Job.Status.QUEUED, cancel_requested=False).update(
            status=Job.Status.RUNNING, worker=worker, started_at=now, heartbeat_at=now
        )
    )


def job_report_progress(*, job_id: int, progress: int, message: str | None = None) -> None:
    fields: dict[str, Any] = {
        "progress": max(0, min(100, int(progress))),
        "heartbeat_at": timezone.now(),
    }
    if message is not None:
        fields["message"] = message[:300]
    Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).update(**fields)


def job_heartbeat(*, job_id: int) -> None:
    Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).update(heartbeat_at=timezone.now())


def job_append_log(*, job_id: int, line: str) -> None:
    stamp = timezone.now().strftime("%H:%M:%S")
    # Concat in SQL appends without a read-modify-write race.
    Job.objects.filter(pk=job_id).update(
        log=Concat("log", Value(f"{stamp} {line[:MAX_LOG_LINE]}\n"))
    )


def job_is_cancel_requested(*, job_id: int) -> bool:
    return Job.objects.filter(pk=job_id, cancel_requested=True).exists()


def job_succeed(*, job_id: int, result: dict[str, Any] | None = None, message: str = "") -> bool:
    return bool(
        Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).update(
            status=Job.Status.SUCCEEDED,
            progress=100,
            result=result or {},
            message=message[:300],
            finished_at=timezone.now(),
        )
    )


def job_fail(*, job_id: int, error: str) -> bool:
    return bool(
        Job.objects.filter(pk=job_id, status__in=[Job.Status.RUNNING, Job.Status.QUEUED]).update(
            status=Job.Status.FAILED, error=error, finished_at=timezone.now()
        )
    )


def job_mark_cancelled(*, job_id: int) -> bool:
    return bool(
        Job.objects.filter(pk=job_id, status__in=[Job.Status.RUNNING, Job.Status.QUEUED]).update(
            status=Job.Status.CANCELLED,
            message=_("Cancelled."),
            finished_at=timezone.now(),
        )
    )


def job_cancel(*, job: Job) -> Job:
    """A queued job is cancelled at once; a running one gets a flag its work checks between
    steps, and ends `cancelled` when it sees it. Each is one conditional UPDATE, so a worker
    claiming the job at the same moment either runs it (and sees the flag) or never gets it."""
    if job.is_finished:
        raise Conflict(_("This job has already finished."), code="job_finished")
    now = timezone.now()
    Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED).update(
        status=Job.Status.CANCELLED, cancel_requested=True, message=_("Cancelled."), finished_at=now
    )
    Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(cancel_requested=True)
    job.refresh_from_db()
    return job


def jobs_fail_stale(*, older_than: timedelta = STALE_AFTER) -> list[int]:
    """Fail running jobs whose worker stopped heartbeating (killed, machine lost).

    Called when a worker starts, so a job never stays "running" past the next worker start.
    Returns the ids, so the owners of the work can record the failure on their objects.
    """
    cutoff = timezone.now() - older_than
    stale = list(
        Job.objects.filter(status=Job.Status.RUNNING, heartbeat_at__lt=cutoff).values_list(
            "pk", flat=True
        )
    )
    failed = [
        job_id
        for job_id in stale
        if Job.objects.filter(pk=job_id, status=Job.Status.RUNNING, heartbeat_at__lt=cutoff).update(
            status=Job.Status.FAILED,
            error=_("The worker running this job stopped unexpectedly."),
            finished_at=timezone.now(),
        )
    ]
    for job_id in failed:
        logger.warning("job %s failed: its worker stopped heartbeating", job_id)
    return failed
