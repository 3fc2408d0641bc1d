"""What the pages carry for the live updates: where the socket is, and partials that re-fetch
themselves on their job's events (with a slow poll only while no socket is open).

The partials name their jobs in data-job-* attributes, which core/live.js matches against each
event: htmx's own event filters would need eval, which the Content-Security-Policy forbids."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

from mlmanager.datasets.models import Dataset
from mlmanager.jobs import services
from mlmanager.machines.models import Machine

pytestmark = pytest.mark.django_db

FALLBACK = ", mlmanager:resync from:body, mlmanager:poll from:body"


@pytest.fixture
def browser(owner: Any) -> Client:
    client = Client()
    client.force_login(owner)
    return client


def _root(page: str, element_id: str) -> str:
    """The opening tag of the element with that id (the partial's root)."""
    start = page.index(f'<div id="{element_id}"')
    return page[start : page.index(">", page.index('hx-trigger="', start)) + 1]


def _trigger(page: str, element_id: str) -> str:
    """The hx-trigger of the element with that id."""
    return _root(page, element_id).split('hx-trigger="', 1)[1].split('"', 1)[0]


def _jobs_followed(page: str, element_id: str) -> dict[str, str]:
    """The element's data-job-* attributes: the event fields a job of interest has."""
    return {
        name: value
        for name, value in re.findall(r'data-job-([a-z-]+)="([^"]*)"', _root(page, element_id))
    }


def test_the_layout_says_where_the_socket_is(browser: Any, settings: Any) -> None:
    settings.MLMANAGER_LIVE_URL = ""
    settings.MLMANAGER_LIVE_PORT = 9101
    page = browser.get("/jobs/").content.decode()
    assert 'data-live-url="" data-live-port="9101" data-live-fallback-poll="5s"' in page
    assert '<script src="/static/core/live.js" defer></script>' in page
    assert finders.find("core/live.js") is not None

    settings.MLMANAGER_LIVE_URL = "https://live.example.com"
    assert 'data-live-url="https://live.example.com"' in browser.get("/jobs/").content.decode()


def test_a_visitor_gets_no_socket() -> None:
    page = Client().get("/accounts/login/").content.decode()
    assert "live.js" not in page
    assert "data-live-port" not in page


def test_job_pages_follow_their_jobs(owner: Any, browser: Any) -> None:
    job = services.job_create(team=owner.current_team, created_by=owner, kind="dataset.process")
    detail = browser.get(f"/jobs/{job.pk}/").content.decode()
    assert _trigger(detail, "job") == f"mlmanager:job from:body{FALLBACK}"
    assert _jobs_followed(detail, "job") == {"id": str(job.pk)}
    table = browser.get("/jobs/").content.decode()
    assert _trigger(table, "job-table") == f"mlmanager:job from:body{FALLBACK}"
    assert _jobs_followed(table, "job-table") == {}  # every job

    services.job_cancel(job=job)
    detail = browser.get(f"/jobs/{job.pk}/").content.decode()
    # Finished: nothing to poll for, but a socket event still refreshes it.
    assert _trigger(detail, "job") == "mlmanager:job from:body"
    assert _jobs_followed(detail, "job") == {"id": str(job.pk)}
    assert _trigger(browser.get("/jobs/").content.decode(), "job-table") == (
        "mlmanager:job from:body"
    )


def test_dataset_pages_follow_dataset_jobs(owner: Any, browser: Any) -> None:
    dataset = Dataset.objects.create(
        team=owner.current_team, name="d", storage_dir="datasets/live-pages"
    )
    detail = browser.get(f"/datasets/{dataset.pk}/").content.decode()
    assert _trigger(detail, "dataset-body") == f"mlmanager:job from:body{FALLBACK}"
    assert _jobs_followed(detail, "dataset-body") == {"dataset-id": str(dataset.pk)}
    table = browser.get("/datasets/").content.decode()
    assert _trigger(table, "dataset-table") == f"mlmanager:job from:body{FALLBACK}"
    assert _jobs_followed(table, "dataset-table") == {"kind": "dataset.process"}


def test_model_pages_follow_training_and_batch_jobs(owner: Any, browser: Any) -> None:
    machine = Machine.objects.create(
        team=owner.current_team, name="m", time_budget_s=60, storage_dir="machines/live-pages"
    )
    detail = browser.get(f"/models/{machine.pk}/").content.decode()
    assert _trigger(detail, "model-body") == "mlmanager:job from:body"
    assert _jobs_followed(detail, "model-body") == {
        "kind": "machine.train",
        "machine-id": str(machine.pk),
    }
    table = browser.get("/models/").content.decode()
    assert _trigger(table, "model-table") == "mlmanager:job from:body"
    assert _jobs_followed(table, "model-table") == {"kind": "machine.train"}
    batches = browser.get(f"/models/{machine.pk}/batches/").content.decode()
    assert _trigger(batches, "batch-table") == "mlmanager:job from:body"
    assert _jobs_followed(batches, "batch-table") == {
        "kind": "batch.predict",
        "machine-id": str(machine.pk),
    }
