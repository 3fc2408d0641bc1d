"""Every endpoint and form that combines two ids, with the ids from two teams.

The caller owns team A and is also a member of team B (a viewer, then an editor), so each of
B's objects is visible to them on its own: what must refuse is the combination. The rule is
that objects combined in one operation belong to one team (a model of A reads A's datasets
only), and a token limited to team A reaches nothing of B. Every refusal leaves nothing behind:
no row created or changed, no file written.

Operations that take two ids, and where the pair is checked:
- a batch prediction: the model (URL) and a dataset (body, or the page's form);
- any request with a team-limited token: the token's team and the object's id;
- feedback on a prediction, a dataset upload to a team, a model created from a dataset:
  reached here with the team-limited token;
- lists filtered by another team's id (`?model=`, `?team=`): they show nothing of it.
Pairs that cannot cross teams by construction are not listed: a version is looked up by its
number within the model of the URL, a model's training and feedback dataset use the model's own
dataset (created in the dataset's team), and team, membership, invitation and token pages act
on the caller's own memberships.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from mlmanager.accounts.caller import Caller
from mlmanager.accounts.models import Membership, Team
from mlmanager.core.tests.factories import MembershipFactory, api_client_for, member
from mlmanager.datasets.models import Dataset
from mlmanager.jobs.models import Job
from mlmanager.machines.models import Machine, TrainingRun
from mlmanager.predictions import batches, services
from mlmanager.predictions.models import BatchPrediction, Prediction
from mlmanager.predictions.tests.conftest import (  # noqa: F401 - fixtures
    make_dataset,
    make_model,
    trained_binary,
)

pytestmark = pytest.mark.django_db


@dataclasses.dataclass
class World:
    caller: Any
    role_in_b: str
    team_a: Team
    team_b: Team
    ids: dict[str, Any]


@pytest.fixture(params=[Membership.Role.VIEWER, Membership.Role.EDITOR])
def world(request: Any, make_model: Callable[..., Machine], trained_binary: Any) -> World:  # noqa: F811
    caller = member("owner")
    owner_b = member("owner")
    MembershipFactory(team=owner_b.current_team, user=caller, role=request.param)
    model_a = make_model(caller, trained_binary, name="A's model")
    model_b = make_model(owner_b, trained_binary, name="B's model")
    answered = services.predictions_make(
        machine=model_b,
        version=model_b.active_version,
        payload={"rows": [{}]},
        caller=Caller.for_session(owner_b),
    )
    batch_b = batches.batch_create(
        machine=model_b,
        version=model_b.active_version,
        caller=Caller.for_session(owner_b),
        dataset=model_b.dataset,
    )
    ids = {
        "model_a": model_a.pk,
        "dataset_a": model_a.dataset_id,
        "model_b": model_b.pk,
        "dataset_b": model_b.dataset_id,
        "team_b": owner_b.current_team_id,
        "prediction_b": answered["predictions"][0]["id"],
        "batch_b": batch_b.pk,
        "job_b": batch_b.job_id,
    }
    return World(caller, request.param, caller.current_team, owner_b.current_team, ids)


def _state() -> dict[str, Any]:
    """What a refused request must leave as it was: rows, B's objects, and every file."""
    media = Path(settings.MEDIA_ROOT)
    return {
        "machines": sorted(Machine.objects.values_list("pk", "name", "active_version_id")),
        "datasets": sorted(Dataset.objects.values_list("pk", "name", "team_id")),
        "batches": sorted(BatchPrediction.objects.values_list("pk", "machine_id", "dataset_id")),
        "jobs": sorted(Job.objects.values_list("pk", "status")),
        "runs": TrainingRun.objects.count(),
        "predictions": sorted(Prediction.objects.values_list("pk", "feedback")),
        "teams": sorted(Team.objects.values_list("pk", "name")),
        "files": sorted(str(path) for path in media.rglob("*") if path.is_file()),
    }


def _send(client: Any, method: str, url: str, data: Any, world: World) -> Any:
    url = url.format(**world.ids)
    if isinstance(client, APIClient):
        if data == "upload":
            upload = SimpleUploadedFile("rows.csv", b"a,b\n1,2\n", "text/csv")
            return client.post(url, {"file": upload, "team": world.ids["team_b"]})
        body = {key: world.ids.get(str(value), value) for key, value in (data or {}).items()}
        return getattr(client, method)(url, body, format="json")
    body = {key: world.ids.get(str(value), value) for key, value in (data or {}).items()}
    return getattr(client, method)(url, body)


# (what, method, url, body): one operation combining an object of A with one of B.
PAIRS_ACROSS_TEAMS = [
    (
        "batch of A's model on B's dataset",
        "post",
        "/api/v1/models/{model_a}/batch_predictions/",
        {"dataset": "dataset_b"},
    ),
    (
        "batch of B's model on A's dataset",
        "post",
        "/api/v1/models/{model_b}/batch_predictions/",
        {"dataset": "dataset_a"},
    ),
]
PAGE_PAIRS_ACROSS_TEAMS = [
    (
        "batch page of A's model with B's dataset",
        "post",
        "/models/{model_a}/batches/",
        {"dataset": "dataset_b", "format": "csv"},
    ),
    (
        "batch page of B's model with A's dataset",
        "post",
        "/models/{model_b}/batches/",
        {"dataset": "dataset_a", "format": "csv"},
    ),
]
# A token limited to team A, with an id of B (the caller is a member of B).
TEAM_TOKEN_PAIRS = [
    ("get", "/api/v1/models/{model_b}/", None),
    ("patch", "/api/v1/models/{model_b}/", {"name": "taken over"}),
    ("get", "/api/v1/models/{model_b}/versions/", None),
    ("get", "/api/v1/models/{model_b}/training_status/", None),
    ("post", "/api/v1/models/{model_b}/predict/", {"rows": [{}]}),
    ("post", "/api/v1/predictions/{prediction_b}/feedback/", {"actual": "no"}),
    ("get", "/api/v1/models/{model_b}/batch_predictions/", None),
    ("post", "/api/v1/models/{model_a}/batch_predictions/", {"dataset": "dataset_b"}),
    ("post", "/api/v1/models/{model_b}/feedback_dataset/", None),
    ("get", "/api/v1/batch_predictions/{batch_b}/", None),
    ("get", "/api/v1/batch_predictions/{batch_b}/download/", None),
    ("get", "/api/v1/datasets/{dataset_b}/", None),
    ("get", "/api/v1/datasets/{dataset_b}/preview/", None),
    ("post", "/api/v1/models/", {"dataset": "dataset_b", "outputs": ["churned"]}),
    ("post", "/api/v1/datasets/", "upload"),
    ("get", "/api/v1/teams/{team_b}/members/", None),
    ("get", "/api/v1/jobs/{job_b}/", None),
    ("post", "/api/v1/jobs/{job_b}/cancel/", None),
]


def _assert_refused(response: Any, world: World, *, model_of_b_first: bool, api: bool) -> None:
    # B's model is checked first where it is the URL's: a viewer may not change it (403);
    # whoever may, meets the dataset of another team: not found.
    if model_of_b_first and world.role_in_b == Membership.Role.VIEWER:
        expected = (403, "permission_denied")
    else:
        expected = (404, "not_found")
    assert response.status_code == expected[0], response.content[:300]
    if api:
        assert response.json()["error"]["code"] == expected[1]


@pytest.mark.parametrize(
    ("what", "method", "url", "data"), PAIRS_ACROSS_TEAMS, ids=[p[0] for p in PAIRS_ACROSS_TEAMS]
)
def test_api_pairs_across_teams_are_refused(
    world: World, what: str, method: str, url: str, data: Any
) -> None:
    before = _state()
    response = _send(api_client_for(world.caller), method, url, data, world)
    _assert_refused(response, world, model_of_b_first="{model_b}" in url, api=True)
    assert _state() == before


@pytest.mark.parametrize(
    ("what", "method", "url", "data"),
    PAGE_PAIRS_ACROSS_TEAMS,
    ids=[p[0] for p in PAGE_PAIRS_ACROSS_TEAMS],
)
def test_page_pairs_across_teams_are_refused(
    world: World, what: str, method: str, url: str, data: Any
) -> None:
    browser = Client()
    browser.force_login(world.caller)
    before = _state()
    response = _send(browser, method, url, data, world)
    _assert_refused(response, world, model_of_b_first="{model_b}" in url, api=False)
    assert _state() == before


@pytest.mark.parametrize(("method", "url", "data"), TEAM_TOKEN_PAIRS)
def test_a_team_token_reaches_nothing_of_another_team(
    world: World, method: str, url: str, data: Any
) -> None:
    client = api_client_for(world.caller, team=world.team_a)
    before = _state()
    response = _send(client, method, url, data, world)
    assert response.status_code == 404, response.content[:300]
    assert response.json()["error"]["code"] == "not_found"
    assert _state() == before


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/predictions/?model={model_b}",
        "/api/v1/models/?team={team_b}",
        "/api/v1/models/?dataset={dataset_b}",
        "/api/v1/datasets/?team={team_b}",
        "/api/v1/jobs/?team={team_b}",
    ],
)
def test_a_team_token_lists_nothing_of_another_team(world: World, url: str) -> None:
    client = api_client_for(world.caller, team=world.team_a)
    response = client.get(url.format(**world.ids))
    # An empty page, or the filter's refusal of an id it does not know: never B's objects.
    if response.status_code == 200:
        assert response.json()["count"] == 0
    else:
        assert response.status_code == 400, response.content[:300]
        assert response.json()["error"]["code"] == "invalid_filter"


def test_the_same_operations_within_one_team_are_accepted(world: World) -> None:
    """The refusals above are about the pairs: each operation works within team A."""
    client = api_client_for(world.caller, team=world.team_a)
    response = client.post(
        "/api/v1/models/{model_a}/batch_predictions/".format(**world.ids),
        {"dataset": world.ids["dataset_a"]},
        format="json",
    )
    assert response.status_code == 202, response.content
    assert response.json()["dataset"] == world.ids["dataset_a"]
