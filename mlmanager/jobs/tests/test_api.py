from __future__ import annotations

import pytest

from mlmanager.core.tests.factories import api_client_for, member
from mlmanager.jobs import services
from mlmanager.jobs.models import Job

pytestmark = pytest.mark.django_db


def _job(user) -> Job:
    return services.job_create(team=user.current_team, created_by=user, kind="dataset.process")


def test_job_detail_and_list(api, owner) -> None:
    job = _job(owner)
    body = api.get(f"/api/v1/jobs/{job.pk}/").json()
    assert (body["id"], body["status"], body["progress"], body["log"]) == (job.pk, "queued", 0, [])
    listed = api.get("/api/v1/jobs/?status=queued").json()
    assert [j["id"] for j in listed["results"]] == [job.pk]
    assert api.get("/api/v1/jobs/?status=running").json()["count"] == 0


def test_cancel_via_api(api, owner) -> None:
    job = _job(owner)
    response = api.post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    again = api.post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "job_finished"


def test_viewer_cannot_cancel(owner) -> None:
    job = _job(owner)
    viewer = member("viewer", team=owner.current_team)
    response = api_client_for(viewer).post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED
