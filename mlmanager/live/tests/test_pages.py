"""What the pages carry for the live updates: where the socket is, and partials that re-fetch
themselves on their job's events (with a slow poll only while no socket is open)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

from mlmanager.datasets.models import Dataset
from mlmanager.jobs import services
from mlmanager.jobs.models import Job
from mlmanager.machines.models import Machine

pytestmark = pytest.mark.django_db

FALLBACK = ", mlmanager:resync from:body, every 5s [!mlmanagerLiveConnected]"


@pytest.fixture
def browser(owner: Any) -> Client:
    client = Client()
    client.force_login(owner)
    return client


def _trigger(page: str, element_id: str) -> str:
    """The hx-trigger of the element with that id (the partial's root)."""
    start = page.index(f'<div id="{element_id}"')
    tag = page[start : page.index(">", page.index('hx-trigger="', start))]
    return tag.split('hx-trigger="', 1)[1].split('"', 1)[0]


def test_the_layout_says_where_the_socket_is(browser: Any, settings: Any) -> None:
    settings.MLMANAGER_LIVE_URL = ""
    settings.MLMANAGER_LIVE_PORT = 9101
    page = browser.get("/jobs/").content.decode()
    assert 'data-live-url="" data-live-port="9101"' in page
    assert '<script src="/static/core/live.js" defer></script>' in page
    assert finders.find("core/live.js") is not None

    settings.MLMANAGER_LIVE_URL = "https://live.example.com"
    assert 'data-live-url="https://live.example.com"' in browser.get("/jobs/").content.decode()


def test_a_visitor_gets_no_socket() -> None:
    page = Client().get("/accounts/login/").content.decode()
    assert "live.js" not in page
    assert "data-live-port" not in page


def test_job_pages_follow_their_jobs(owner: Any, browser: Any) -> None:
    job = services.job_create(
        team=owner.current_team, created_by=owner, kind=Job.Kind.DATASET_PROCESS
    )
    detail = browser.get(f"/jobs/{job.pk}/").content.decode()
    assert _trigger(detail, "job") == f"mlmanager:job[detail.id=={job.pk}] from:body{FALLBACK}"
    assert _trigger(browser.get("/jobs/").content.decode(), "job-table") == (
        f"mlmanager:job from:body{FALLBACK}"
    )

    services.job_cancel(job=job)
    detail = browser.get(f"/jobs/{job.pk}/").content.decode()
    # Finished: nothing to poll for, but a socket event still refreshes it.
    assert _trigger(detail, "job") == f"mlmanager:job[detail.id=={job.pk}] from:body"
    assert _trigger(browser.get("/jobs/").content.decode(), "job-table") == (
        "mlmanager:job from:body"
    )


def test_dataset_pages_follow_dataset_jobs(owner: Any, browser: Any) -> None:
    dataset = Dataset.objects.create(
        team=owner.current_team, name="d", storage_dir="datasets/live-pages"
    )
    body = _trigger(browser.get(f"/datasets/{dataset.pk}/").content.decode(), "dataset-body")
    assert body == f"mlmanager:job[detail.dataset_id=={dataset.pk}] from:body{FALLBACK}"
    table = _trigger(browser.get("/datasets/").content.decode(), "dataset-table")
    assert table == f"mlmanager:job[detail.kind=='dataset.process'] from:body{FALLBACK}"


def test_model_pages_follow_training_and_batch_jobs(owner: Any, browser: Any) -> None:
    machine = Machine.objects.create(
        team=owner.current_team, name="m", time_budget_s=60, storage_dir="machines/live-pages"
    )
    body = _trigger(browser.get(f"/models/{machine.pk}/").content.decode(), "model-body")
    assert body == (
        f"mlmanager:job[detail.kind=='machine.train'&&detail.machine_id=={machine.pk}] from:body"
    )
    table = _trigger(browser.get("/models/").content.decode(), "model-table")
    assert table == "mlmanager:job[detail.kind=='machine.train'] from:body"
    batches = _trigger(
        browser.get(f"/models/{machine.pk}/batches/").content.decode(), "batch-table"
    )
    assert batches == (
        f"mlmanager:job[detail.kind=='batch.predict'&&detail.machine_id=={machine.pk}] from:body"
    )
