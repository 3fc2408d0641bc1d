"""Task entry points: load by id, call the service (through the job runner)."""

from __future__ import annotations

from functools import partial

from django_tasks import task

from mlmanager.datasets.services import dataset_mark_failed, dataset_process
from mlmanager.jobs.runner import run_job


@task(queue_name="default")
def process_dataset(job_id: int, dataset_id: int) -> None:
    """Convert an uploaded file to Parquet and profile it."""
    run_job(
        job_id,
        partial(dataset_process, dataset_id=dataset_id),
        on_failure=lambda error: dataset_mark_failed(dataset_id=dataset_id, error=error),
    )
