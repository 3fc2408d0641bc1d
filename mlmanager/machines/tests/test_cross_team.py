"""A member of team A gets 404 from every model, run and version page and API of team B."""

from __future__ import annotations

import pytest
from django.test import Client

from mlmanager.accounts.caller import Caller
from mlmanager.core.tests.factories import api_client_for, member
from mlmanager.machines import services
from mlmanager.machines.models import Machine, ModelVersion, TrainingRun
from mlmanager.machines.tests.conftest import make_version

pytestmark = pytest.mark.django_db

PAGE_URLS = [
    ("get", "/models/{machine}/"),
    ("get", "/models/new/?dataset={dataset}"),
    ("get", "/models/new/?dataset={dataset}&outputs=churned"),
    ("post", "/models/new/?dataset={dataset}"),
    ("post", "/models/{machine}/train/"),
    ("post", "/models/{machine}/edit/"),
    ("post", "/models/{machine}/delete/"),
    ("post", "/models/{machine}/versions/1/activate/"),
    ("post", "/models/runs/{run}/cancel/"),
]
API_URLS = [
    ("get", "/api/v1/models/{machine}/"),
    ("patch", "/api/v1/models/{machine}/"),
    ("delete", "/api/v1/models/{machine}/"),
    ("post", "/api/v1/models/{machine}/start_training/"),
    ("get", "/api/v1/models/{machine}/training_status/"),
    ("get", "/api/v1/models/{machine}/versions/"),
    ("post", "/api/v1/models/{machine}/versions/1/activate/"),
    ("get", "/api/v1/runs/{run}/"),
    ("post", "/api/v1/runs/{run}/cancel/"),
]


@pytest.fixture
def team_b_objects(make_dataset) -> dict[str, int]:
    owner_b = member("owner")
    dataset = make_dataset(owner_b, name="B's data")
    machine = services.machine_create(
        caller=Caller.for_session(owner_b), dataset=dataset, outputs=["churned"], name="B's model"
    )
    make_version(machine, activate=False)
    run = services.training_start(caller=Caller.for_session(owner_b), machine=machine)
    return {"dataset": dataset.pk, "machine": machine.pk, "run": run.pk}


def _untouched(ids: dict[str, int]) -> None:
    machine = Machine.objects.get(pk=ids["machine"])
    assert machine.name == "B's model"
    assert machine.active_version_id is None
    assert TrainingRun.objects.get(pk=ids["run"]).job.status == "queued"
    assert ModelVersion.objects.filter(machine=machine).count() == 1
    assert Machine.objects.count() == 1


@pytest.mark.parametrize(("method", "url"), PAGE_URLS)
def test_pages_of_other_team_are_404(owner, team_b_objects, method, url) -> None:
    client = Client()
    client.force_login(owner)
    data = {"name": "x", "level": "1", "dataset": team_b_objects["dataset"]}
    response = getattr(client, method)(url.format(**team_b_objects), data)
    assert response.status_code == 404
    _untouched(team_b_objects)


@pytest.mark.parametrize(("method", "url"), API_URLS)
def test_api_of_other_team_is_404(owner, team_b_objects, method, url) -> None:
    client = api_client_for(owner)
    response = getattr(client, method)(url.format(**team_b_objects), {"name": "x"}, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    _untouched(team_b_objects)


def test_creating_from_other_teams_dataset_is_404(owner, team_b_objects) -> None:
    response = api_client_for(owner).post(
        "/api/v1/models/",
        {"dataset": team_b_objects["dataset"], "outputs": ["churned"]},
        format="json",
    )
    assert response.status_code == 404
    _untouched(team_b_objects)


def test_lists_do_not_show_other_team(owner, team_b_objects) -> None:
    client = api_client_for(owner)
    assert client.get("/api/v1/models/").json()["count"] == 0
    browser = Client()
    browser.force_login(owner)
    html = browser.get("/models/").content.decode()
    assert "B&#x27;s model" not in html
    assert "B's model" not in html
