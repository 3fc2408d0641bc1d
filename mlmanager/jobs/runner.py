"""Runs a job's work inside a worker: claim, report, honour cancellation, record the outcome.

Tasks are thin: `run_job(job_id, work)` where `work(context)` is a service that does the job and
returns the result reference. The Job row, not the task backend, is the truth.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from django.db import connections
from django.utils.translation import gettext as _

from mlmanager.core.errors import ApplicationError
from mlmanager.jobs import services
from mlmanager.jobs.models import Job

logger = logging.getLogger(__name__)

# Progress writes are throttled: a chatty loop must not turn into a write storm.
PROGRESS_MIN_INTERVAL_S = 0.5
CANCEL_CHECK_MIN_INTERVAL_S = 0.5
# Well under jobs.services.STALE_AFTER, so a quiet but healthy job never looks orphaned.
HEARTBEAT_INTERVAL_S = 20.0


class JobCancelled(Exception):
    """Raised inside work when the user asked to cancel; the runner records `cancelled`."""


class JobContext:
    """What work sees of its job: progress, log lines and the cancel flag."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.job_id = job.pk
        self._last_progress_at = 0.0
        self._last_cancel_check_at = 0.0
        self._cancel_seen = False

    def progress(self, percent: float, message: str | None = None, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_progress_at >= PROGRESS_MIN_INTERVAL_S:
            self._last_progress_at = now
            services.job_report_progress(job_id=self.job_id, progress=int(percent), message=message)

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
            self._cancel_seen = services.job_is_cancel_requested(job_id=self.job_id)
        return self._cancel_seen

    def check_cancelled(self) -> None:
        if self.is_cancel_requested():
            raise JobCancelled()


class _Heartbeat:
    """Touches the job's heartbeat from a thread while the work runs, however quiet it is."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"job-{job_id}-heartbeat")

    def _beat(self) -> None:
        try:
            while not self._stop.wait(HEARTBEAT_INTERVAL_S):
                services.job_heartbeat(job_id=self.job_id)
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
    (e.g. a dataset) when the work fails or is cancelled."""
    if not services.job_claim(job_id=job_id, worker=services.worker_name()):
        # Cancelled while still queued: the owner of the work still has to hear about it.
        cancelled_before_start = Job.objects.filter(
            pk=job_id, status=Job.Status.CANCELLED, started_at__isnull=True
        ).exists()
        if cancelled_before_start and on_failure is not None:
            on_failure(_("Cancelled by a user."))
        logger.info("job %s was not queued (claimed elsewhere or cancelled); skipping", job_id)
        return
    job = Job.objects.get(pk=job_id)
    context = JobContext(job)
    logger.info("job %s (%s) started", job_id, job.kind)
    try:
        with _Heartbeat(job_id):
            result = work(context)
    except JobCancelled:
        services.job_mark_cancelled(job_id=job_id)
        if on_failure is not None:
            on_failure(_("Cancelled by a user."))
        logger.info("job %s cancelled", job_id)
    except ApplicationError as error:
        services.job_fail(job_id=job_id, error=error.message)
        if on_failure is not None:
            on_failure(error.message)
        logger.info("job %s failed: %s", job_id, error.message)
    except Exception:
        logger.exception("job %s crashed", job_id)
        message = _(
            "An internal error stopped this job. The administrator can find it in the logs."
        )
        services.job_fail(job_id=job_id, error=message)
        if on_failure is not None:
            on_failure(message)
    else:
        services.job_succeed(job_id=job_id, result=result or {})
        logger.info("job %s succeeded", job_id)
