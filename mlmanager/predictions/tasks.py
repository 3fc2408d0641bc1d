"""Task entry points: load by id, call the service (through the job runner)."""

from __future__ import annotations

from functools import partial

from django_tasks import task

from mlmanager.jobs.runner import run_job
from mlmanager.predictions.batches import batch_failed, batch_work


@task()
def predict_batch(job_id: int, batch_id: int) -> None:
    """Predict every row of a batch's file into its result file."""
    run_job(
        job_id,
        partial(batch_work, batch_id=batch_id),
        on_failure=lambda error: batch_failed(batch_id=batch_id),
    )
