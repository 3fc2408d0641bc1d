from __future__ import annotations

import pytest
from django.db import transaction

from mlmanager.jobs import services
from mlmanager.jobs.models import Job
from mlmanager.jobs.runner import run_job
from mlmanager.jobs.tests import sample_tasks

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clear_failures() -> None:
    sample_tasks.FAILURES.clear()


def _queued_job(owner, **kwargs) -> Job:
    with transaction.atomic():
        job = services.job_create(
            team=owner.current_team, created_by=owner, kind=Job.Kind.DATASET_PROCESS
        )
        services.job_enqueue(job=job, task=sample_tasks.sample_job, **kwargs)
    return job


def test_job_runs_to_success_through_the_worker(owner, run_jobs) -> None:
    job = _queued_job(owner)
    job.refresh_from_db()
    assert job.task_id  # the queue's id is kept for tracing
    run_jobs()
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert job.progress == 100
    assert job.result == {"steps": 3}
    assert [line.split(" ", 1)[1] for line in job.log_lines] == [
        "did step 0",
        "did step 1",
        "did step 2",
    ]
    assert job.started_at <= job.finished_at
    assert job.worker


def test_claimed_job_cannot_run_twice(owner, run_jobs) -> None:
    job = _queued_job(owner)
    assert services.job_claim(job_id=job.pk, worker="a") is True
    assert services.job_claim(job_id=job.pk, worker="b") is False
    calls = []
    run_job(job.pk, lambda context: calls.append(1))
    assert calls == []  # already running elsewhere: the second delivery does nothing


def test_user_error_fails_job_with_its_message(owner, run_jobs) -> None:
    job = _queued_job(owner, outcome="user-error")
    run_jobs()
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.error == "The target column has only one value."
    assert sample_tasks.FAILURES == ["The target column has only one value."]


def test_crash_fails_job_without_leaking_internals(owner, run_jobs) -> None:
    job = _queued_job(owner, outcome="crash")
    run_jobs()
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert "boom" not in job.error
    assert "internal error" in job.error


def test_cancel_queued_job_never_runs(owner, run_jobs) -> None:
    job = _queued_job(owner)
    services.job_cancel(job=job)
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED
    run_jobs()
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED
    assert job.started_at is None
    assert sample_tasks.FAILURES == ["Cancelled by a user."]


def test_cancel_running_job_stops_between_steps(owner, run_jobs) -> None:
    job = _queued_job(owner, steps=5, outcome="cancel-during")
    run_jobs()
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED
    assert len(job.log_lines) == 1  # stopped before step 1
    assert sample_tasks.FAILURES == ["Cancelled by a user."]


def test_cancel_finished_job_conflicts(owner, run_jobs) -> None:
    from mlmanager.core.errors import Conflict

    job = _queued_job(owner)
    run_jobs()
    job.refresh_from_db()
    with pytest.raises(Conflict):
        services.job_cancel(job=job)


def test_worker_start_fails_jobs_whose_worker_died(owner, run_jobs) -> None:
    from datetime import timedelta

    from django.utils import timezone

    orphan = services.job_create(team=owner.current_team, created_by=owner, kind="machine.train")
    services.job_claim(job_id=orphan.pk, worker="dead-host:1")
    Job.objects.filter(pk=orphan.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    alive = services.job_create(team=owner.current_team, created_by=owner, kind="machine.train")
    services.job_claim(job_id=alive.pk, worker="live-host:1")

    run_jobs()  # the worker command checks for stale jobs when it starts

    orphan.refresh_from_db()
    alive.refresh_from_db()
    assert orphan.status == Job.Status.FAILED
    assert orphan.error == "The worker running this job stopped unexpectedly."
    assert alive.status == Job.Status.RUNNING


def test_quiet_work_keeps_heartbeating(owner, run_jobs, monkeypatch) -> None:
    import time

    from mlmanager.jobs import runner

    monkeypatch.setattr(runner, "HEARTBEAT_INTERVAL_S", 0.05)
    job = services.job_create(team=owner.current_team, created_by=owner, kind="machine.train")
    beats = []

    def quiet_work(context) -> dict:
        first = Job.objects.get(pk=context.job_id).heartbeat_at
        time.sleep(0.3)  # reports nothing
        beats.append(Job.objects.get(pk=context.job_id).heartbeat_at > first)
        return {}

    run_job(job.pk, quiet_work)
    assert beats == [True]
