from __future__ import annotations

import pytest
from django.test import Client

from mlmanager.core.tests.factories import member
from mlmanager.jobs import services
from mlmanager.jobs.models import Job

pytestmark = pytest.mark.django_db


def test_jobs_page_lists_team_jobs_and_polls_while_active(owner) -> None:
    job = services.job_create(
        team=owner.current_team, created_by=owner, kind="dataset.process", description="Load X"
    )
    client = Client()
    client.force_login(owner)
    page = client.get("/jobs/").content.decode()
    assert "Load X" in page
    # Live updates refresh the table; a slow poll only while the socket is down.
    assert (
        'hx-trigger="mlmanager:job from:body, mlmanager:resync from:body, '
        'mlmanager:poll from:body"' in page
    )
    partial = client.get("/jobs/", HTTP_HX_REQUEST="true").content.decode()
    assert partial.startswith('<div id="job-table"')
    detail = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "Cancel job" in detail


def test_cancel_from_page(owner) -> None:
    job = services.job_create(team=owner.current_team, created_by=owner, kind="dataset.process")
    client = Client()
    client.force_login(owner)
    response = client.post(f"/jobs/{job.pk}/cancel/", {"next": "/jobs/"})
    assert response["Location"] == "/jobs/"
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED
    finished = client.post(f"/jobs/{job.pk}/cancel/")
    assert finished.status_code == 409
    assert "already finished" in finished.content.decode()


def test_viewer_sees_no_cancel_button(owner) -> None:
    job = services.job_create(team=owner.current_team, created_by=owner, kind="dataset.process")
    viewer = member("viewer", team=owner.current_team)
    client = Client()
    client.force_login(viewer)
    assert "Cancel job" not in client.get(f"/jobs/{job.pk}/").content.decode()
    assert client.post(f"/jobs/{job.pk}/cancel/").status_code == 403


def test_the_jobs_page_takes_the_api_filters_and_ignores_a_bad_value(owner) -> None:
    services.job_create(
        team=owner.current_team, created_by=owner, kind="dataset.process", description="Queued X"
    )
    cancelled = services.job_create(
        team=owner.current_team, created_by=owner, kind="dataset.process", description="Gone Y"
    )
    services.job_cancel(job=cancelled)
    client = Client()
    client.force_login(owner)
    page = client.get("/jobs/", {"status": "cancelled"}).content.decode()
    assert "Gone Y" in page and "Queued X" not in page
    # The API answers 400 to a status it does not know; the page shows the whole list.
    page = client.get("/jobs/", {"status": "sleeping"}).content.decode()
    assert "Gone Y" in page and "Queued X" in page
