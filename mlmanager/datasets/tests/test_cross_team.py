"""A member of team A gets 404 from every dataset and job page and API of team B."""

from __future__ import annotations

import pytest
from django.test import Client

from mlmanager.core.tests.factories import api_client_for, member
from mlmanager.datasets.models import Dataset
from mlmanager.jobs.services import job_create

pytestmark = pytest.mark.django_db

PAGE_URLS = [
    ("get", "/datasets/{dataset}/"),
    ("get", "/datasets/{dataset}/preview/"),
    ("post", "/datasets/{dataset}/rename/"),
    ("post", "/datasets/{dataset}/column-type/"),
    ("post", "/datasets/{dataset}/delete/"),
    ("get", "/jobs/{job}/"),
    ("post", "/jobs/{job}/cancel/"),
]
API_URLS = [
    ("get", "/api/v1/datasets/{dataset}/"),
    ("patch", "/api/v1/datasets/{dataset}/"),
    ("delete", "/api/v1/datasets/{dataset}/"),
    ("get", "/api/v1/datasets/{dataset}/preview/"),
    ("get", "/api/v1/jobs/{job}/"),
    ("post", "/api/v1/jobs/{job}/cancel/"),
    ("get", "/api/v1/teams/{team}/members/"),
]


@pytest.fixture
def team_b_objects() -> dict[str, int]:
    owner_b = member("owner")
    job = job_create(team=owner_b.current_team, created_by=owner_b, kind="dataset.process")
    dataset = Dataset.objects.create(
        team=owner_b.current_team,
        name="B's data",
        original_filename="b.csv",
        storage_dir="datasets/b",
        status="ready",
        profile={"row_count": 1, "column_count": 1, "columns": [{"name": "a"}]},
        job=job,
    )
    return {"dataset": dataset.pk, "job": job.pk, "team": owner_b.current_team_id}


@pytest.mark.parametrize(("method", "url"), PAGE_URLS)
def test_pages_of_other_team_are_404(owner, team_b_objects, method, url) -> None:
    client = Client()
    client.force_login(owner)
    response = getattr(client, method)(url.format(**team_b_objects), {"name": "x", "column": "a"})
    assert response.status_code == 404
    assert Dataset.objects.get(pk=team_b_objects["dataset"]).name == "B's data"


@pytest.mark.parametrize(("method", "url"), API_URLS)
def test_api_of_other_team_is_404(owner, team_b_objects, method, url) -> None:
    client = api_client_for(owner)
    response = getattr(client, method)(url.format(**team_b_objects), {"name": "x"}, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert Dataset.objects.filter(pk=team_b_objects["dataset"]).exists()


def test_lists_do_not_show_other_team(owner, team_b_objects) -> None:
    client = api_client_for(owner)
    assert client.get("/api/v1/datasets/").json()["count"] == 0
    assert client.get("/api/v1/jobs/").json()["count"] == 0
    browser = Client()
    browser.force_login(owner)
    assert "B&#x27;s data" not in browser.get("/datasets/").content.decode()
    assert "B's data" not in browser.get("/datasets/").content.decode()
