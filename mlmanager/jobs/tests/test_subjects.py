"""The jobs pages link each job to what it worked on (dataset, model, batch) and keep its last
message apart from its error."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from mlmanager.accounts.models import User
from mlmanager.core.tests.factories import member
from mlmanager.datasets.models import Dataset
from mlmanager.jobs import services
from mlmanager.jobs.models import Job
from mlmanager.machines.models import Machine, TrainingRun
from mlmanager.machines.tests.conftest import make_dataset  # noqa: F401 - fixture
from mlmanager.predictions.models import BatchPrediction

pytestmark = pytest.mark.django_db


def process_job(user: User, dataset: Dataset) -> Job:
    return services.job_create(
        team=user.current_team,
        created_by=user,
        kind="dataset.process",
        subject=dataset,
        description="Load",
    )


def training_job(user: User, machine: Machine) -> Job:
    job = services.job_create(team=user.current_team, created_by=user, kind="machine.train")
    run = TrainingRun.objects.create(
        team=user.current_team, machine=machine, job=job, time_budget_s=60
    )
    return services.job_set_subject(job=job, subject=run)


def machine_of(user: User, dataset: Dataset | None = None) -> Machine:
    return Machine.objects.create(
        team=user.current_team,
        created_by=user,
        name="Churn model",
        dataset=dataset,
        outputs=[{"name": "churned", "task": "binary", "metric": "roc_auc"}],
        time_budget_s=60,
        storage_dir=f"models/{uuid.uuid4().hex}",
    )


def client_of(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_jobs_link_to_their_dataset_model_and_batch(
    owner: User,
    make_dataset: Callable[..., Dataset],  # noqa: F811
) -> None:
    dataset = make_dataset(owner, name="Customers")
    processing = process_job(owner, dataset)
    machine = machine_of(owner, dataset)
    training_job(owner, machine)
    batching = services.job_create(team=owner.current_team, created_by=owner, kind="batch.predict")
    batch = BatchPrediction.objects.create(
        team=owner.current_team,
        machine=machine,
        version_number=1,
        job=batching,
        dataset=dataset,
        storage_dir=f"batches/{uuid.uuid4().hex}",
    )
    services.job_set_subject(job=batching, subject=batch)
    client = client_of(owner)

    listing = client.get("/jobs/").content.decode()
    dataset_link = f'<a href="/datasets/{dataset.pk}/" data-testid="job-subject-dataset">'
    model_link = f'<a href="/models/{machine.pk}/" data-testid="job-subject-model">'
    batch_link = f'<a href="/models/{machine.pk}/batches/" data-testid="job-subject-batch">'
    assert f"{dataset_link}Dataset: Customers</a>" in listing
    assert f"{model_link}Model: Churn model</a>" in listing
    assert f"{batch_link}Batch #{batch.pk}</a>" in listing
    # Dataset link twice: the processing job and the batch that read the dataset.
    assert listing.count(dataset_link) == 2

    detail = client.get(f"/jobs/{processing.pk}/").content.decode()
    assert "Worked on" in detail and dataset_link in detail
    detail = client.get(f"/jobs/{batching.pk}/").content.decode()
    assert dataset_link in detail and model_link in detail and batch_link in detail


def test_no_link_to_a_deleted_or_foreign_dataset(owner: User, make_dataset) -> None:  # noqa: F811
    gone = make_dataset(owner, name="Gone")
    process_job(owner, gone)
    gone.delete()
    stranger = member("owner")
    theirs = make_dataset(stranger, name="Theirs")
    with pytest.raises(ValueError, match="belong to different teams"):
        process_job(owner, theirs)
    # A job row can only name its own team's data; be sure even if one did.
    mine = make_dataset(owner, name="Mine")
    Job.objects.filter(pk=process_job(owner, mine).pk).update(subject_id=theirs.pk)
    listing = client_of(owner).get("/jobs/").content.decode()
    assert "job-subject-dataset" not in listing and "Theirs" not in listing


def test_message_and_error_are_apart_and_labelled(owner: User) -> None:
    job = services.job_create(team=owner.current_team, created_by=owner, kind="dataset.process")
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.FAILED,
        message="Reading the file",
        error="The file is not a table.",
    )
    client = client_of(owner)
    listing = client.get("/jobs/").content.decode()
    assert '<small class="muted job-line" data-testid="job-message">Reading the file</small>' in (
        listing
    )
    assert "<strong>Error:</strong> The file is not a table.</small>" in listing
    detail = client.get(f"/jobs/{job.pk}/").content.decode()
    assert '<dt>Last message</dt><dd data-testid="job-message">Reading the file</dd>' in detail
    assert "<dt>Error</dt>" in detail
    assert 'data-testid="job-error">The file is not a table.</dd>' in detail


def test_list_queries_do_not_grow_with_jobs(owner: User, make_dataset) -> None:  # noqa: F811
    dataset = make_dataset(owner)
    process_job(owner, dataset)
    training_job(owner, machine_of(owner))
    client = client_of(owner)
    with CaptureQueriesContext(connection) as one:
        client.get("/jobs/")
    for _ in range(5):
        process_job(owner, dataset)
        training_job(owner, machine_of(owner))
    with CaptureQueriesContext(connection) as many:
        page = client.get("/jobs/").content.decode()
    assert page.count('data-testid="job-subject-model"') == 6
    assert len(many) == len(one)
