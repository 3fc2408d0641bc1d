"""Runs a job's work inside a worker: claim, report, honour cancellation, record the outcome.

Tasks are thin: `run_job(job_id, work)` where `work(context)` is a service that does the job and
returns the result reference. The Job row, not the task backend, is the truth.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, connections
from django.utils.translation import gettext as _

from mlmanager.core.errors import ApplicationError
from mlmanager.jobs import services
from mlmanager.jobs.models import Job

logger = logging.getLogger(__name__)

# Progress writes are throttled: a chatty loop must not turn into a write storm.
PROGRESS_MIN_INTERVAL_S = 0.5
CANCEL_CHECK_MIN_INTERVAL_S = 0.5
# Writes of a job's outcome are retried this many times, with growing pauses, when the
# database connection is lost (a restarted database, a terminated connection).
RECORD_ATTEMPTS = 5
RECORD_BACKOFF_S = 0.5
TRANSIENT_ERRORS = (OperationalError, InterfaceError)


class JobCancelled(Exception):
    """Raised inside work when the user asked to cancel; the runner records `cancelled`."""


class JobTakenOver(JobCancelled):
    """Raised inside work when the reaper took the job from this attempt (it took this worker
    for dead: paused, cut off): the work stops and leaves the job to the later attempt."""


class JobContext:
    """What work sees of its job: progress, log lines and the cancel flag."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.job_id = job.pk
        self.claimed_at = job.started_at  # this attempt's claim: the fence of its writes
        self._taken_over = False
        self._last_progress_at = 0.0
        self._last_cancel_check_at = 0.0
        self._cancel_seen = False

    def progress(self, percent: float, message: str | None = None, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_progress_at >= PROGRESS_MIN_INTERVAL_S:
            self._last_progress_at = now
            services.job_report_progress(
                job_id=self.job_id,
                progress=int(percent),
                message=message,
                claimed_at=self.claimed_at,
            )

    def log(self, line: str) -> None:
        logger.info("job %s: %s", self.job_id, line)
        services.job_append_log(job_id=self.job_id, line=line)

    def is_cancel_requested(self) -> bool:
        now = time.monotonic()
        if (
            not self._cancel_seen
            and now - self._last_cancel_check_at >= CANCEL_CHECK_MIN_INTERVAL_S
        ):
            self._last_cancel_check_at = now
            self._taken_over = not services.job_still_claimed(
                job_id=self.job_id, claimed_at=self.claimed_at
            )
            self._cancel_seen = self._taken_over or services.job_is_cancel_requested(
                job_id=self.job_id
            )
        return self._cancel_seen

    def check_cancelled(self) -> None:
        if self.is_cancel_requested():
            raise JobTakenOver() if self._taken_over else JobCancelled()

    def check_still_claimed(self) -> None:
        """Before work touches what a later attempt of the job would own too (the run's files,
        its version): raise JobTakenOver if the reaper gave the job to another attempt."""
        if not services.job_still_claimed(job_id=self.job_id, claimed_at=self.claimed_at):
            self._taken_over = self._cancel_seen = True
            raise JobTakenOver()


class _Heartbeat:
    """Touches the job's heartbeat from a thread while the work runs, however quiet it is."""

    def __init__(self, job_id: int, claimed_at: Any) -> None:
        self.job_id = job_id
        self.claimed_at = claimed_at
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"job-{job_id}-heartbeat")

    def _beat(self) -> None:
        try:
            while not self._stop.wait(settings.MLMANAGER_JOB_HEARTBEAT_S):
                try:
                    services.job_heartbeat(job_id=self.job_id, claimed_at=self.claimed_at)
                except TRANSIENT_ERRORS:
                    # The next beat reconnects; missing beats for MLMANAGER_JOB_STALE_S
                    # hands the job to the reaper, which is what should happen then.
                    logger.warning("job %s: heartbeat failed", self.job_id, exc_info=True)
                    connections.close_all()
        finally:
            connections.close_all()  # this thread's own connection

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


def run_job(
    job_id: int,
    work: Callable[[JobContext], dict[str, Any] | None],
    *,
    on_failure: Callable[[str], None] | None = None,
) -> None:
    """`on_failure(message)` lets the owner of the work record the failure on its own object
    (e.g. a dataset) when the work fails or is cancelled. It is called once per job: by the
    attempt that failed, or, when the job ended without running here (cancelled while queued,
    failed by the reaper), by the first message that arrives for it afterwards."""
    if not services.job_claim(job_id=job_id, worker=services.worker_name()):
        if services.job_notify_owner_once(job_id=job_id) and on_failure is not None:
            job = Job.objects.get(pk=job_id)
            on_failure(job.error or _("Cancelled by a user."))
        logger.info("job %s was not queued (claimed elsewhere or ended); skipping", job_id)
        return
    job = Job.objects.get(pk=job_id)
    context = JobContext(job)
    attempt = {"job_id": job_id, "claimed_at": context.claimed_at}

    def failed(write: Callable[..., bool], message: str, **fields: Any) -> None:
        # Only the attempt that still holds the job records its end and tells the owner.
        if _record(write, **attempt, **fields) and on_failure is not None:
            _record(on_failure, message)

    logger.info("job %s (%s) started", job_id, job.kind)
    try:
        with _Heartbeat(job_id, context.claimed_at):
            result = work(context)
    except JobTakenOver:
        logger.warning("job %s was taken from this worker by the reaper; stopped", job_id)
    except JobCancelled:
        failed(services.job_mark_cancelled, _("Cancelled by a user."))
        logger.info("job %s cancelled", job_id)
    except ApplicationError as error:  # the user's input: never retried
        failed(services.job_fail, error.message, error=error.message)
        logger.info("job %s failed: %s", job_id, error.message)
    except TRANSIENT_ERRORS:
        logger.exception("job %s lost its database connection", job_id)
        message = _("The database connection was lost while this job ran. Start it again.")
        failed(services.job_fail, message, error=message)
    except Exception as error:
        logger.exception("job %s crashed", job_id)
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            message = _(
                "The disk is full, so this job could not write its files. "
                "Free space, then start it again."
            )
        else:
            message = _(
                "An internal error stopped this job. The administrator can find it in the logs."
            )
        failed(services.job_fail, message, error=message)
    else:
        if _record(services.job_succeed, **attempt, result=result or {}):
            logger.info("job %s succeeded", job_id)
        else:
            logger.warning("job %s: its result came after the reaper took the job; dropped", job_id)


def _record(write: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a write of the job's outcome, retrying with backoff while the database connection
    is being re-established. The last failure propagates: the job then stays running until
    the reaper takes it (requeued once, then failed)."""
    for attempt in range(RECORD_ATTEMPTS):
        try:
            return write(*args, **kwargs)
        except TRANSIENT_ERRORS:
            if attempt == RECORD_ATTEMPTS - 1:
                raise
            logger.warning("recording a job outcome failed; retrying", exc_info=True)
            connections.close_all()  # a broken connection is replaced on next use
            time.sleep(RECORD_BACKOFF_S * 2**attempt)
    return None
