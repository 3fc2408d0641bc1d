from __future__ import annotations

import pytest
from django.db import transaction
from django_tasks_db.models import DBTaskResult

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
        job = services.job_create(team=owner.current_team, created_by=owner, kind="dataset.process")
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


def test_the_reaper_requeues_a_dead_workers_job_once_and_resends_lost_messages(
    owner, run_jobs, settings
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    long_ago = timezone.now() - timedelta(minutes=5)
    orphan = _queued_job(owner, steps=1)
    services.job_claim(job_id=orphan.pk, worker="dead-host:1")
    Job.objects.filter(pk=orphan.pk).update(heartbeat_at=long_ago)
    alive = _queued_job(owner, steps=1)
    services.job_claim(job_id=alive.pk, worker="live-host:1")
    lost = _queued_job(owner, steps=1)
    Job.objects.filter(pk=lost.pk).update(enqueued_at=long_ago)
    settings.MLMANAGER_JOB_REQUEUE_AFTER_S = 60
    assert DBTaskResult.objects.filter(args_kwargs__kwargs__job_id=lost.pk).exists()
    assert services.jobs_reap()["resent"] == []  # still in the queue: a backlog, not lost
    Job.objects.filter(pk=orphan.pk).update(  # undo what that reap did to the orphan
        status=Job.Status.RUNNING, heartbeat_at=long_ago, requeues=0
    )
    DBTaskResult.objects.all().delete()  # the queue lost its messages

    reaped = services.jobs_reap()

    assert reaped == {"requeued": [orphan.pk], "failed": [], "resent": [lost.pk]}
    orphan.refresh_from_db()
    assert (orphan.status, orphan.requeues, orphan.worker) == (Job.Status.QUEUED, 1, "dead-host:1")
    assert Job.objects.get(pk=alive.pk).status == Job.Status.RUNNING
    assert services.jobs_reap()["requeued"] == []  # a second reaper changes nothing
    run_jobs()  # the worker runs the requeued job, and the lost one once despite two messages
    for job in (orphan, lost):
        job.refresh_from_db()
        assert job.status == Job.Status.SUCCEEDED
        assert job.log.count("did step 0") == 1


def test_periodic_work_runs_once_per_slot_with_two_schedulers() -> None:
    from mlmanager.core.registries import PeriodicTask
    from mlmanager.jobs.scheduler import run_due

    runs: list[str] = []
    tasks = [PeriodicTask("count", lambda: 10.0, lambda: runs.append("ran"))]
    assert run_due(tasks, now=1000.0, owner="scheduler-a") == 1
    assert run_due(tasks, now=1005.0, owner="scheduler-b") == 0  # same slot, other scheduler
    assert run_due(tasks, now=1010.0, owner="scheduler-b") == 1  # next slot
    assert runs == ["ran", "ran"]


def test_the_reaper_is_a_registered_periodic_task(settings) -> None:
    from mlmanager.core.registries import periodic_tasks
    from mlmanager.jobs.services import jobs_reap

    settings.MLMANAGER_REAPER_INTERVAL_S = 7
    reaper = periodic_tasks.get("reap_jobs")
    assert (reaper.run, reaper.interval_s()) == (jobs_reap, 7.0)


def test_quiet_work_keeps_heartbeating(owner, run_jobs, settings) -> None:
    import time

    settings.MLMANAGER_JOB_HEARTBEAT_S = 0.05
    job = services.job_create(team=owner.current_team, created_by=owner, kind="machine.train")
    beats = []

    def quiet_work(context) -> dict:
        first = Job.objects.get(pk=context.job_id).heartbeat_at
        time.sleep(0.3)  # reports nothing
        beats.append(Job.objects.get(pk=context.job_id).heartbeat_at > first)
        return {}

    run_job(job.pk, quiet_work)
    assert beats == [True]


def test_a_worker_the_reaper_gave_up_on_cannot_touch_the_next_attempt(owner) -> None:
    job = services.job_create(team=owner.current_team, created_by=owner, kind="machine.train")
    told: list[str] = []

    def work(context) -> dict:
        # Meanwhile the reaper took the job from this (paused) worker and another claimed it.
        Job.objects.filter(pk=job.pk).update(status=Job.Status.QUEUED, started_at=None)
        assert services.job_claim(job_id=job.pk, worker="other-host:2")
        context.progress(50, "written by the old attempt", force=True)  # fenced off
        context.check_cancelled()  # the old attempt stops here
        return {"never": "recorded"}

    run_job(job.pk, work, on_failure=told.append)

    job.refresh_from_db()
    assert (job.status, job.worker, job.progress) == (Job.Status.RUNNING, "other-host:2", 0)
    assert job.message != "written by the old attempt" and job.result == {}
    assert told == []  # the owner's object belongs to the new attempt now


def test_the_owner_hears_once_of_a_job_the_reaper_failed(owner) -> None:
    job = services.job_create(team=owner.current_team, created_by=owner, kind="machine.train")
    Job.objects.filter(pk=job.pk).update(status=Job.Status.FAILED, error="Its worker died.")
    told: list[str] = []
    for _ in range(3):  # the reaper's message, then two duplicates
        run_job(job.pk, lambda context: {}, on_failure=told.append)
    assert told == ["Its worker died."]
