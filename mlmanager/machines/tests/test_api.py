from __future__ import annotations

import pytest

from mlmanager.core.tests.factories import api_client_for, member
from mlmanager.engine.training import LEVEL_BUDGET_S
from mlmanager.machines.models import Machine
from mlmanager.machines.tests.conftest import BUDGET_S


def _create(api, dataset, **body):
    body.setdefault("outputs", ["churned"])
    body.setdefault("time_budget_s", BUDGET_S)
    return api.post("/api/v1/models/", {"dataset": dataset.pk, **body}, format="json")


def test_create_train_and_read_results(api, owner, make_dataset, run_jobs) -> None:
    """The real engine through the API: a regression model on a fresh dataset."""
    dataset = make_dataset(owner)
    created = _create(api, dataset, name="Spend", outputs=["spend"])
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["name"], body["status"], body["dataset"], body["active_version"]) == (
        "Spend",
        "untrained",
        dataset.pk,
        None,
    )
    assert body["outputs"] == [{"name": "spend", "task": "regression", "metric": "rmse"}]
    assert body["inputs"] == ["plan", "monthly_fee", "tenure_months"]
    assert (body["level"], body["time_budget_s"]) == (None, BUDGET_S)
    assert body["left_out_columns"] == [
        {
            "name": "customer_id",
            "type": "identifier",
            "reason": "an identifier: a different value in nearly every row",
        },
        {"name": "notes", "type": "constant", "reason": "the same value in every row"},
        {"name": "churned", "type": "boolean", "reason": "suggested as an output (last column)"},
    ]
    model_url = f"/api/v1/models/{body['id']}"

    started = api.post(f"{model_url}/start_training/", {"seed": 7}, format="json")
    assert started.status_code == 202, started.json()
    run = started.json()
    assert (run["status"], run["is_active"], run["seed"], run["version"]) == (
        "queued",
        True,
        7,
        None,
    )
    again = api.post(f"{model_url}/start_training/", format="json")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "training_active"
    assert set(again.json()["error"]) == {"code", "message", "details"}
    waiting = api.get(f"{model_url}/training_status/").json()
    assert (waiting["status"], waiting["progress"], waiting["run"]["id"]) == (
        "training",
        0,
        run["id"],
    )

    run_jobs()

    status = api.get(f"{model_url}/training_status/").json()
    assert status["status"] == "ready", status["run"]["error"]
    assert status["progress"] == 100
    assert status["candidates"] >= 1
    assert status["best_score"] is not None
    assert status["active_version"]["number"] == 1
    metrics = status["active_version"]["outputs"][0]["metrics"]
    assert {"rmse", "mae", "r2"} <= set(metrics)
    assert len(metrics["predicted_vs_actual"]["actual"]) == metrics["holdout_rows"]

    finished = api.get(f"/api/v1/runs/{run['id']}/").json()
    assert (finished["status"], finished["is_active"], finished["version"]) == (
        "succeeded",
        False,
        1,
    )
    assert any("Version 1 is now active." in line for line in finished["log"])
    late_cancel = api.post(f"/api/v1/runs/{run['id']}/cancel/")
    assert late_cancel.status_code == 409
    assert late_cancel.json()["error"]["code"] == "training_finished"

    versions = api.get(f"{model_url}/versions/").json()
    assert versions["count"] == 1
    version = versions["results"][0]
    assert (version["number"], version["is_active"], version["outcome"]) == (1, True, "succeeded")
    assert version["reproducibility"]["seed"] == 7
    assert version["outputs"][0]["leaderboard"]
    assert version["outputs"][0]["feature_importance"]


def test_versions_activate_rolls_back(api, owner, make_dataset, run_jobs, fake_engine) -> None:
    machine_id = _create(api, make_dataset(owner)).json()["id"]
    for _ in range(2):
        assert api.post(f"/api/v1/models/{machine_id}/start_training/").status_code == 202
        run_jobs()
    versions = api.get(f"/api/v1/models/{machine_id}/versions/").json()["results"]
    assert [(v["number"], v["is_active"]) for v in versions] == [(2, True), (1, False)]

    rolled_back = api.post(f"/api/v1/models/{machine_id}/versions/1/activate/")
    assert rolled_back.status_code == 200
    assert (rolled_back.json()["number"], rolled_back.json()["is_active"]) == (1, True)
    assert api.get(f"/api/v1/models/{machine_id}/").json()["active_version"] == 1
    versions = api.get(f"/api/v1/models/{machine_id}/versions/").json()["results"]
    assert [(v["number"], v["is_active"]) for v in versions] == [(2, False), (1, True)]
    missing = api.post(f"/api/v1/models/{machine_id}/versions/9/activate/")
    assert missing.status_code == 404


@pytest.mark.django_db
def test_cancel_queued_run(api, owner, make_dataset, committing) -> None:
    machine_id = _create(api, make_dataset(owner)).json()["id"]
    with committing():
        run = api.post(f"/api/v1/models/{machine_id}/start_training/").json()
    cancelled = api.post(f"/api/v1/runs/{run['id']}/cancel/")
    assert cancelled.status_code == 200
    assert (cancelled.json()["status"], cancelled.json()["is_active"]) == ("cancelled", False)
    status = api.get(f"/api/v1/models/{machine_id}/training_status/").json()
    assert (status["status"], status["active_version"]) == ("untrained", None)


@pytest.mark.django_db
def test_update_delete_and_filters(api, owner, make_dataset) -> None:
    dataset = make_dataset(owner)
    machine_id = _create(api, dataset, level=2, time_budget_s=None).json()["id"]
    url = f"/api/v1/models/{machine_id}/"
    assert api.get(url).json()["time_budget_s"] == LEVEL_BUDGET_S[2]

    changed = api.patch(url, {"name": "Churn", "metric": "f1", "level": 3}, format="json")
    assert changed.status_code == 200, changed.json()
    assert changed.json()["name"] == "Churn"
    assert changed.json()["outputs"][0]["metric"] == "f1"
    assert (changed.json()["level"], changed.json()["time_budget_s"]) == (3, LEVEL_BUDGET_S[3])
    nothing = api.patch(url, {}, format="json")
    assert nothing.status_code == 400
    wrong = api.patch(url, {"metric": "rmse"}, format="json")
    assert wrong.status_code == 400
    assert wrong.json()["error"]["code"] == "unknown_metric"

    other = _create(api, make_dataset(owner, name="Other")).json()["id"]
    listed = api.get("/api/v1/models/").json()
    assert [m["id"] for m in listed["results"]] == [other, machine_id]
    assert api.get(f"/api/v1/models/?dataset={dataset.pk}").json()["count"] == 1
    assert api.get("/api/v1/models/?status=untrained").json()["count"] == 2
    assert api.get("/api/v1/models/?status=ready").json()["count"] == 0

    assert api.delete(url).status_code == 204
    assert api.get(url).status_code == 404
    assert not Machine.objects.filter(pk=machine_id).exists()


@pytest.mark.django_db
def test_viewer_reads_but_cannot_change(owner, make_dataset) -> None:
    dataset = make_dataset(owner)
    machine_id = _create(api_client_for(owner), dataset).json()["id"]
    viewer = api_client_for(member("viewer", team=owner.current_team))
    assert viewer.get(f"/api/v1/models/{machine_id}/").status_code == 200
    assert viewer.get(f"/api/v1/models/{machine_id}/training_status/").status_code == 200
    for method, url in [
        ("post", f"/api/v1/models/{machine_id}/start_training/"),
        ("patch", f"/api/v1/models/{machine_id}/"),
        ("delete", f"/api/v1/models/{machine_id}/"),
        ("post", "/api/v1/models/"),
    ]:
        response = getattr(viewer, method)(
            url, {"name": "x", "dataset": dataset.pk, "outputs": ["churned"]}, format="json"
        )
        assert response.status_code == 403, url
        assert response.json()["error"]["code"] == "permission_denied"
    assert Machine.objects.count() == 1


@pytest.mark.django_db
def test_schema_lists_model_endpoints(client) -> None:
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    for path in (
        "/api/v1/models/",
        "/api/v1/models/{machine_id}/",
        "/api/v1/models/{machine_id}/start_training/",
        "/api/v1/models/{machine_id}/training_status/",
        "/api/v1/models/{machine_id}/versions/",
        "/api/v1/models/{machine_id}/versions/{number}/activate/",
        "/api/v1/runs/{run_id}/",
        "/api/v1/runs/{run_id}/cancel/",
    ):
        assert path in schema["paths"], path
