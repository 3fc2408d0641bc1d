"""The event of a job (the object it belongs to, its log's tail) and its publication."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from mlmanager.datasets.models import Dataset
from mlmanager.jobs import services
from mlmanager.jobs.models import Job
from mlmanager.live.events import LOG_TAIL_LINES, job_events, team_group
from mlmanager.live.tests.conftest import IN_MEMORY_LAYER
from mlmanager.machines.models import Machine, TrainingRun
from mlmanager.predictions.models import BatchPrediction

pytestmark = pytest.mark.django_db


def _job(user: Any, kind: str = "dataset.process") -> Job:
    return services.job_create(team=user.current_team, created_by=user, kind=kind)


def _machine(user: Any) -> Machine:
    return Machine.objects.create(
        team=user.current_team, name="Churn", time_budget_s=60, storage_dir="machines/live-1"
    )


def test_each_event_names_the_object_its_job_works_for(
    owner: Any, django_assert_num_queries: Any
) -> None:
    dataset_job = _job(owner)
    dataset = Dataset.objects.create(
        team=owner.current_team, name="d", storage_dir="datasets/live-1", job=dataset_job
    )
    services.job_set_subject(job=dataset_job, subject=dataset)
    machine = _machine(owner)
    training_job = _job(owner, "machine.train")
    run = TrainingRun.objects.create(
        team=owner.current_team, machine=machine, job=training_job, time_budget_s=60
    )
    services.job_set_subject(job=training_job, subject=run)
    batch_job = _job(owner, "batch.predict")
    batch = BatchPrediction.objects.create(
        team=owner.current_team,
        machine=machine,
        job=batch_job,
        version_number=1,
        storage_dir="batches/live-1",
    )
    services.job_set_subject(job=batch_job, subject=batch)
    ids = [dataset_job.pk, training_job.pk, batch_job.pk]

    # The jobs, then one query per resolver that reads (a dataset job's subject is its page).
    with django_assert_num_queries(3):
        events = {event["id"]: (team_id, event) for team_id, event in job_events(job_ids=ids)}

    def names(job: Job) -> tuple[Any, ...]:
        team_id, event = events[job.pk]
        assert team_id == owner.current_team_id
        return event["kind"], event["dataset_id"], event["machine_id"], event["batch_id"]

    assert names(dataset_job) == ("dataset.process", dataset.pk, None, None)
    assert names(training_job) == ("machine.train", None, machine.pk, None)
    assert names(batch_job) == ("batch.predict", None, machine.pk, batch.pk)


def test_a_subject_of_another_model_is_refused(owner: Any) -> None:
    job = _job(owner, "machine.train")
    with pytest.raises(ValueError, match=r"a machine\.train job works on a machines\.trainingrun"):
        services.job_set_subject(job=job, subject=_machine(owner))


def test_the_log_tail_is_the_last_whole_lines(owner: Any) -> None:
    job = _job(owner)
    lines = [f"step {number} " + "x" * 300 for number in range(12)]  # ~3,700 characters
    for line in lines:
        services.job_append_log(job_id=job.pk, line=line)

    ((_team_id, event),) = job_events(job_ids=[job.pk])

    assert [tail.split(" ", 1)[1] for tail in event["log_tail"]] == lines[-LOG_TAIL_LINES:]


def test_a_change_is_published_to_the_team_once_committed(
    owner: Any, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.CHANNEL_LAYERS = IN_MEMORY_LAYER
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(team_group(owner.current_team_id), channel)
    job = _job(owner)

    with django_capture_on_commit_callbacks() as callbacks:
        services.job_claim(job_id=job.pk, worker="w")
    assert len(callbacks) == 1  # nothing sent yet: a page would re-fetch the old state
    callbacks[0]()

    message = async_to_sync(layer.receive)(channel)
    assert message["type"] == "job.event"
    assert message["team_id"] == owner.current_team_id
    assert (message["event"]["id"], message["event"]["status"]) == (job.pk, "running")


def test_an_unreachable_redis_never_fails_the_job(
    owner: Any, settings: Any, django_capture_on_commit_callbacks: Any, caplog: Any
) -> None:
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:9"]},  # nothing listens there
        }
    }
    job = _job(owner)

    with (
        caplog.at_level(logging.WARNING, logger="mlmanager.live.events"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert services.job_claim(job_id=job.pk, worker="w")

    job.refresh_from_db()
    assert job.status == Job.Status.RUNNING
    assert f"the change of job {job.pk} could not be published; pausing" in caplog.text

    # Meanwhile the process does not try again: no stall on every progress report.
    caplog.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.job_report_progress(job_id=job.pk, progress=10)
    assert "could not be published" not in caplog.text


def test_without_a_channel_layer_nothing_is_published(
    owner: Any, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.CHANNEL_LAYERS = {}
    job = _job(owner)

    with django_capture_on_commit_callbacks() as callbacks:
        services.job_claim(job_id=job.pk, worker="w")

    assert callbacks == []  # the live server polls the database instead
