"""Job state changes. Every transition is a conditional UPDATE (works on SQLite and PostgreSQL):
it succeeds only from the expected state, so a job is claimed, finished or cancelled once."""

from __future__ import annotations

import logging
import os
import socket
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q, Value
from django.db.models.functions import Concat
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _
from django_tasks import task_backends

from mlmanager.core.errors import Conflict
from mlmanager.core.registries import job_kinds
from mlmanager.jobs.models import Job, Worker, heartbeat_fresh_since
from mlmanager.jobs.signals import job_changed

logger = logging.getLogger(__name__)

MAX_LOG_LINE = 1000
# A job whose worker died goes back to the queue this many times, then fails.
MAX_REQUEUES = 1


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def job_create(
    *,
    team: Any,
    created_by: Any,
    kind: str,
    subject: models.Model | None = None,
    description: str = "",
) -> Job:
    """A queued job of a registered `kind`. `subject` (what it works on) may be set later with
    job_set_subject when it is created after its job (a training run needs its job first)."""
    job = Job(team=team, created_by=created_by, kind=kind, description=description[:200])
    if subject is not None:
        _check_subject(job, subject)
        job.subject = subject
    job.full_clean()
    job.save()
    job_changed.send(sender=Job, job_id=job.pk)
    return job


def job_set_subject(*, job: Job, subject: models.Model) -> Job:
    """Record what the job works on, once that exists (created in the job's transaction)."""
    _check_subject(job, subject)
    job.subject = subject
    job.save(update_fields=["subject_type", "subject_id"])
    return job


def _check_subject(job: Job, subject: models.Model) -> None:
    """A subject of another model would send the kind's live events and links astray; one of
    another team would lead the job's team to data that is not theirs."""
    kind = job_kinds.get(job.kind)  # LookupError for a kind no app registered
    if subject._meta.label_lower != kind.subject_model.lower():
        raise ValueError(
            f"a {kind.name} job works on a {kind.subject_model.lower()}, "
            f"not a {subject._meta.label_lower}"
        )
    subject_team_id = getattr(subject, "team_id", None)  # None: not a team's object
    if subject_team_id is not None and subject_team_id != job.team_id:
        raise ValueError(f"job {job.pk} and its subject belong to different teams")


def job_enqueue(*, job: Job, task: Any, **task_kwargs: Any) -> None:
    """Hands the job to the queue once the surrounding transaction commits (ids only, JSON).

    The task and its arguments are kept on the row, so the reaper can send the job again."""
    Job.objects.filter(pk=job.pk).update(
        queue=task.queue_name, task_path=task.module_path, task_kwargs=task_kwargs
    )
    # robust: a broker or database error while sending must not turn the request that
    # created the job into an error; the reaper sends what was not sent.
    transaction.on_commit(lambda: _send(job.pk, task, task_kwargs), robust=True)


def _send(job_id: int, task: Any, task_kwargs: dict[str, Any]) -> None:
    # Stamped before sending: a worker may start the job before a later write would land.
    Job.objects.filter(pk=job_id).update(enqueued_at=timezone.now())
    try:
        result = task.enqueue(job_id=job_id, **task_kwargs)
    except Exception:
        # The broker is unreachable even after the publish retries: the job stays queued and
        # the reaper sends it once the broker is back (MLMANAGER_JOB_REQUEUE_AFTER_S).
        logger.exception("job %s could not be sent to the queue; the reaper will retry", job_id)
        return
    Job.objects.filter(pk=job_id).update(task_id=str(result.id))


def job_send_again(*, job: Job) -> None:
    """Send a queued job's task again (the first message was lost, or its worker died)."""
    _send(job.pk, import_string(job.task_path), job.task_kwargs)


def job_claim(*, job_id: int, worker: str) -> bool:
    """Queued → running, for one worker only: the conditional UPDATE is the atomic claim that
    makes a message delivered twice (or sent again by the reaper) run the work once."""
    now = timezone.now()
    claimed = Job.objects.filter(
        pk=job_id, status=Job.Status.QUEUED, cancel_requested=False
    ).update(status=Job.Status.RUNNING, worker=worker, started_at=now, heartbeat_at=now)
    if claimed:
        Worker.objects.filter(name=worker).update(current_job_id=job_id)
        job_changed.send(sender=Job, job_id=job_id)
    return bool(claimed)


def _attempt(job_id: int, claimed_at: Any) -> Any:
    """The job while it is running the attempt claimed at `claimed_at` (the claim's started_at,
    which a requeue clears and the next claim replaces): the fence that keeps the writes of a
    worker the reaper gave up on (paused, partitioned) off a later attempt. None: any attempt."""
    running = Job.objects.filter(pk=job_id, status=Job.Status.RUNNING)
    return running if claimed_at is None else running.filter(started_at=claimed_at)


def job_report_progress(
    *, job_id: int, progress: int, message: str | None = None, claimed_at: Any = None
) -> None:
    fields: dict[str, Any] = {
        "progress": max(0, min(100, int(progress))),
        "heartbeat_at": timezone.now(),
    }
    if message is not None:
        fields["message"] = message[:300]
    if _attempt(job_id, claimed_at).update(**fields):
        job_changed.send(sender=Job, job_id=job_id)


def job_heartbeat(*, job_id: int, claimed_at: Any = None) -> None:
    _attempt(job_id, claimed_at).update(heartbeat_at=timezone.now())


def job_append_log(*, job_id: int, line: str) -> None:
    stamp = timezone.now().strftime("%H:%M:%S")
    # Concat in SQL appends without a read-modify-write race.
    Job.objects.filter(pk=job_id).update(
        log=Concat("log", Value(f"{stamp} {line[:MAX_LOG_LINE]}\n"))
    )
    job_changed.send(sender=Job, job_id=job_id)


def job_is_cancel_requested(*, job_id: int) -> bool:
    return Job.objects.filter(pk=job_id, cancel_requested=True).exists()


def job_still_claimed(*, job_id: int, claimed_at: Any) -> bool:
    """False once the reaper took the job from this attempt (requeued or failed it)."""
    return _attempt(job_id, claimed_at).exists()


def job_succeed(
    *,
    job_id: int,
    result: dict[str, Any] | None = None,
    message: str = "",
    claimed_at: Any = None,
) -> bool:
    return _finish(
        _attempt(job_id, claimed_at),
        job_id,
        status=Job.Status.SUCCEEDED,
        progress=100,
        result=result or {},
        message=message[:300],
    )


def job_fail(*, job_id: int, error: str, claimed_at: Any = None) -> bool:
    """Running (or, with no attempt named, queued) → failed. The caller tells the owner of the
    work, so `owner_notified` is set with it."""
    return _finish(
        _ending(job_id, claimed_at),
        job_id,
        status=Job.Status.FAILED,
        error=error,
        owner_notified=True,
    )


def job_mark_cancelled(*, job_id: int, claimed_at: Any = None) -> bool:
    return _finish(
        _ending(job_id, claimed_at),
        job_id,
        status=Job.Status.CANCELLED,
        message=_("Cancelled."),
        owner_notified=True,
    )


def job_notify_owner_once(*, job_id: int) -> bool:
    """True for the one caller that gets to tell the owner of the work that the job ended
    unsuccessfully without it hearing (the reaper failed it); later duplicates get False."""
    return bool(
        Job.objects.filter(
            pk=job_id,
            status__in=[Job.Status.FAILED, Job.Status.CANCELLED],
            owner_notified=False,
        ).update(owner_notified=True)
    )


def _ending(job_id: int, claimed_at: Any) -> Any:
    if claimed_at is not None:
        return _attempt(job_id, claimed_at)
    return Job.objects.filter(pk=job_id, status__in=[Job.Status.RUNNING, Job.Status.QUEUED])


def _finish(jobs: Any, job_id: int, **fields: Any) -> bool:
    finished = jobs.update(finished_at=timezone.now(), **fields)
    if finished:
        Worker.objects.filter(current_job_id=job_id).update(current_job=None)
        job_changed.send(sender=Job, job_id=job_id)
    return bool(finished)


def job_cancel(*, job: Job) -> Job:
    """A queued job is cancelled at once; a running one gets a flag its work checks between
    steps, and ends `cancelled` when it sees it. Each is one conditional UPDATE, so a worker
    claiming the job at the same moment either runs it (and sees the flag) or never gets it."""
    if job.is_finished:
        raise Conflict(_("This job has already finished."), code="job_finished")
    now = timezone.now()
    Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED).update(
        status=Job.Status.CANCELLED,
        cancel_requested=True,
        message=_("Cancelled."),
        finished_at=now,
    )
    Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(cancel_requested=True)
    job.refresh_from_db()
    job_changed.send(sender=Job, job_id=job.pk)
    return job


def reaper_interval_s() -> float:
    return float(settings.MLMANAGER_REAPER_INTERVAL_S)


def jobs_reap(*, now: Any = None) -> dict[str, list[int]]:
    """The reaper: the Job rows, not the queue, decide what happens to work in flight.

    - A running job whose heartbeat is older than MLMANAGER_JOB_STALE_S lost its worker
      (killed, machine gone): it goes back to the queue and is sent again, MAX_REQUEUES times,
      then fails with a message saying why. Its task is sent in both cases, so the owner of the
      work hears about a failure (runner.run_job tells it when the job is already finished).
    - A job still queued MLMANAGER_JOB_REQUEUE_AFTER_S after it was sent is sent again: a
      broker restarted without persistence loses its messages. A duplicate is harmless; the
      claim lets one run.

    Each change is a conditional UPDATE, so two reapers at once change a job once.
    """
    now = now or timezone.now()
    stale_before = heartbeat_fresh_since(now)
    reaped: dict[str, list[int]] = {"requeued": [], "failed": [], "resent": []}
    for job in Job.objects.filter(status=Job.Status.RUNNING, heartbeat_at__lt=stale_before):
        try:
            outcome = _reap_stale(job, stale_before, now)
        except Exception:  # one job the reaper cannot handle must not stop it for the others
            logger.exception("the reaper could not handle job %s", job.pk)
            continue
        if outcome is not None:
            reaped[outcome].append(job.pk)
    resend_before = now - timedelta(seconds=settings.MLMANAGER_JOB_REQUEUE_AFTER_S)
    waiting = Job.objects.filter(
        Q(enqueued_at__lt=resend_before)
        # Committed, but the process died before its on-commit send.
        | Q(enqueued_at__isnull=True, created_at__lt=resend_before),
        status=Job.Status.QUEUED,
        cancel_requested=False,
    ).exclude(task_path="")
    for job in _lost(list(waiting)):
        logger.warning("job %s still queued since %s: sending it again", job.pk, job.enqueued_at)
        try:
            job_send_again(job=job)
        except Exception:
            logger.exception("the reaper could not send job %s again", job.pk)
            continue
        reaped["resent"].append(job.pk)
    return reaped


def _reap_stale(job: Job, stale_before: Any, now: Any) -> str | None:
    """Requeue or fail one running job whose heartbeat stopped; None if it changed meanwhile."""
    still_stale = Job.objects.filter(
        pk=job.pk, status=Job.Status.RUNNING, heartbeat_at__lt=stale_before
    )
    # Queued again only if it can be sent again, and not if the user asked to cancel it
    # (checked in the UPDATE itself: a cancel arriving now makes it fail instead).
    requeue = job.requeues < MAX_REQUEUES and bool(job.task_path)
    changed = requeue and still_stale.filter(cancel_requested=False).update(
        status=Job.Status.QUEUED,
        requeues=job.requeues + 1,
        started_at=None,
        heartbeat_at=None,
        progress=0,
        message=_("Its worker stopped; queued again."),
    )
    outcome = "requeued"
    if not changed:
        changed = still_stale.update(
            status=Job.Status.FAILED,
            error=_("The worker running this job stopped unexpectedly."),
            finished_at=now,
        )
        outcome = "failed"
    if not changed:
        return None
    logger.warning("job %s %s: its worker %s stopped heartbeating", job.pk, outcome, job.worker)
    Worker.objects.filter(current_job_id=job.pk).update(current_job=None)
    job_changed.send(sender=Job, job_id=job.pk)
    if job.task_path:  # requeued: to run again; failed: so the owner of the work hears of it
        job_send_again(job=job)
    return outcome


def _lost(waiting: list[Job]) -> list[Job]:
    """Of jobs queued a long time, those whose message may be gone: all of them, unless the
    broker can tell how many messages its queue holds (Celery) and holds at least as many as
    jobs wait for it — then they are a backlog, not lost, and sending again would only grow it.
    """
    depth = getattr(task_backends["default"], "queue_depth", None)
    if depth is None:
        return waiting
    lost: list[Job] = []
    for queue in {job.queue for job in waiting}:
        jobs = [job for job in waiting if job.queue == queue]
        try:
            held = depth(queue)
        except Exception:  # the broker is down: sending fails too; try at the next round
            logger.warning("could not read the depth of queue %s", queue, exc_info=True)
            continue
        queued = Job.objects.filter(status=Job.Status.QUEUED, queue=queue).count()
        if held < queued:
            lost.extend(jobs)
    return lost
