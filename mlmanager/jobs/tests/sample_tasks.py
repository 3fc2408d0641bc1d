"""A task used only by the jobs tests: walks a few steps, checks cancellation, may fail."""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from django_tasks import task

from mlmanager.core.errors import ApplicationError
from mlmanager.jobs.runner import JobContext, run_job

FAILURES: list[str] = []


def _work(context: JobContext, *, steps: int, outcome: str, pause_s: float) -> dict[str, Any]:
    for step in range(steps):
        time.sleep(pause_s)
        context.check_cancelled()
        context.progress(100 * step / steps, f"step {step}", force=True)
        context.log(f"did step {step}")
        if outcome == "cancel-during" and step == 0:
            from mlmanager.jobs.models import Job

            Job.objects.filter(pk=context.job_id).update(cancel_requested=True)
            context._last_cancel_check_at = 0.0  # no throttling in a test
    if outcome == "user-error":
        raise ApplicationError("The target column has only one value.")
    if outcome == "crash":
        raise RuntimeError("boom")
    return {"steps": steps}


@task()
def sample_job(job_id: int, steps: int = 3, outcome: str = "ok", pause_s: float = 0.0) -> None:
    run_job(
        job_id,
        partial(_work, steps=steps, outcome=outcome, pause_s=pause_s),
        on_failure=FAILURES.append,
    )
