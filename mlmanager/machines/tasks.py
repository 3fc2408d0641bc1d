"""Task entry points: load by id, call the service (through the job runner)."""

from __future__ import annotations

from functools import partial

from django_tasks import task

from mlmanager.jobs.runner import run_job
from mlmanager.machines.services.mlflow_tracking import run_log_work
from mlmanager.machines.services.training import training_run_end, training_run_work


@task(queue_name="training")
def train_machine(job_id: int, run_id: int) -> None:
    """Search for the best model of a run's machine within its time budget."""
    _train(job_id, run_id)


# The same work as a task of its own (not `train_machine.using(queue_name="gpu")`): the Job row
# keeps the task's module path, and the reaper sends a job again by that path, so an image run
# sent to a GPU worker goes back to the GPU queue.
@task(queue_name="gpu")
def train_machine_on_gpu(job_id: int, run_id: int) -> None:
    """Train an image model on a worker with a GPU."""
    _train(job_id, run_id)


def _train(job_id: int, run_id: int) -> None:
    run_job(
        job_id,
        partial(training_run_work, run_id=run_id),
        on_failure=lambda error: training_run_end(run_id=run_id, error=error),
    )


@task(queue_name="default")
def mlflow_log_run(job_id: int, run_id: int) -> None:
    """Log a finished run to the MLflow server of MLFLOW_TRACKING_URI."""
    run_job(job_id, partial(run_log_work, run_id=run_id))
