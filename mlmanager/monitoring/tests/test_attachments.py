"""A model attached to a site's sensors predicts on each new set of readings (issue 15: "attach a
model to a site's sensors and it predicts on each new reading set")."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from mlmanager.accounts.caller import Caller
from mlmanager.accounts.models import Membership, Team, User
from mlmanager.engine.profiling import profile_parquet
from mlmanager.engine.training import OutputSpec, TrainingSpec, train
from mlmanager.machines import files
from mlmanager.machines.models import Machine, machine_storage_dir
from mlmanager.machines.tests.conftest import make_dataset  # noqa: F401 - a fixture
from mlmanager.monitoring.models import Alert, ModelAttachment
from mlmanager.monitoring.services.attachments import attachments_on_readings
from mlmanager.monitoring.services.evaluation import evaluate_due_rules
from mlmanager.monitoring.services.rules import rule_create
from mlmanager.predictions.log import prediction_log
from mlmanager.predictions.models import Prediction
from mlmanager.predictions.tests.conftest import TrainedOutputs, install_version
from mlmanager.sites.models import Sensor
from mlmanager.sites.services.readings import readings_ingest
from mlmanager.sites.tests.factories import sensor_of, site_of, site_role

pytestmark = pytest.mark.django_db


def mill_history(rows: int = 400, seed: int = 0) -> pd.DataFrame:
    """A mill's sensor history: it fails when hot and shaking."""
    generator = np.random.default_rng(seed)
    temperature = generator.normal(70, 10, rows).round(2)
    vibration = generator.normal(30, 8, rows).round(2)
    failing = (temperature > 78) & (vibration > 34)
    return pd.DataFrame(
        {
            "temperature": temperature,
            "vibration": vibration,
            "failure": np.where(failing, "yes", "no"),
        }
    )


@pytest.fixture(scope="session")
def trained_failure(tmp_path_factory: pytest.TempPathFactory) -> TrainedOutputs:
    folder: Path = tmp_path_factory.mktemp("failure")
    data = folder / "data.parquet"
    mill_history().to_parquet(data, index=False)
    types = {column["name"]: column["type"] for column in profile_parquet(data)["columns"]}
    inputs = [("temperature", types["temperature"]), ("vibration", types["vibration"])]
    spec = TrainingSpec(
        inputs=inputs,
        outputs=[OutputSpec("failure", "binary", "roc_auc")],
        time_budget_s=600,  # the candidate cap ends the search, however slow the machine
        max_candidates=2,
    )
    outcome = train(data, spec, workdir=folder / "work", artifact_key=files.artifact_key())
    assert outcome.status == "succeeded", outcome
    records = [
        {
            "name": result.name,
            "task": result.task,
            "metric": result.metric,
            "metrics": {},
            "leaderboard": [],
            "feature_importance": [],
            "best_estimator": result.best_estimator,
            "artifact": str(result.artifact_path.relative_to(folder)),
            "artifact_signature": result.artifact_signature,
        }
        for result in outcome.outputs
    ]
    return TrainedOutputs(folder, [{"name": n, "type": t} for n, t in inputs], records)


@pytest.fixture
def failure_model(
    owner: User,
    make_dataset: Callable[..., Any],  # noqa: F811
    trained_failure: TrainedOutputs,
) -> Machine:
    dataset = make_dataset(owner, mill_history(), name="Mill history")
    machine = Machine.objects.create(
        team=owner.current_team,
        created_by=owner,
        name="Failure predictor",
        dataset=dataset,
        inputs=["temperature", "vibration"],
        outputs=[{"name": "failure", "task": "binary", "metric": "roc_auc"}],
        time_budget_s=60,
        storage_dir=machine_storage_dir(owner.current_team_id),
    )
    install_version(machine, trained_failure)
    return machine


@pytest.fixture
def mill(owner: User) -> dict[str, Any]:
    site = site_of(owner.current_team)
    return {
        "site": site,
        "temperature": sensor_of(site, "Temperature"),
        "vibration": sensor_of(site, "Vibration", sensor_type="vibration"),
    }


def attach(api: APIClient, mill: dict[str, Any], model: Machine, **extra: Any) -> Any:
    body = {
        "site": mill["site"].pk,
        "model": model.pk,
        "inputs": {"temperature": mill["temperature"].pk, "vibration": mill["vibration"].pk},
        **extra,
    }
    return api.post(reverse("api:model-attachments"), body, format="json")


def test_attach_then_each_new_reading_set_is_predicted_and_logged(
    api: APIClient, mill: dict[str, Any], failure_model: Machine, committing: Callable[[], Any]
) -> None:
    response = attach(api, mill, failure_model, min_interval_s=60)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["model"] == failure_model.pk and body["site"] == mill["site"].pk
    now = timezone.now()
    Sensor.objects.filter(pk=mill["temperature"].pk).update(last_value=95.0, last_timestamp=now)
    Sensor.objects.filter(pk=mill["vibration"].pk).update(last_value=50.0, last_timestamp=now)

    with committing():
        attachments_on_readings(team_id=failure_model.team_id, sensor_ids=[mill["vibration"].pk])
    prediction_log.flush()
    logged = list(Prediction.objects.filter(machine=failure_model))
    assert len(logged) == 1
    assert logged[0].source == Prediction.Source.SITE
    assert logged[0].inputs == {"temperature": 95.0, "vibration": 50.0}
    assert logged[0].outputs["failure"]["value"] in ("yes", "no")
    attachment = ModelAttachment.objects.get()
    assert attachment.last_predicted_at is not None and attachment.last_error == ""

    # Within the interval a new reading set does not predict again; after it, it does.
    with committing():
        attachments_on_readings(team_id=failure_model.team_id, sensor_ids=[mill["vibration"].pk])
    prediction_log.flush()
    assert Prediction.objects.filter(machine=failure_model).count() == 1
    ModelAttachment.objects.update(last_predicted_at=now - timedelta(seconds=61))
    with committing():
        attachments_on_readings(team_id=failure_model.team_id, sensor_ids=[mill["vibration"].pk])
    prediction_log.flush()
    assert Prediction.objects.filter(machine=failure_model).count() == 2


def test_a_sensor_without_a_value_is_recorded_not_raised(
    api: APIClient, mill: dict[str, Any], failure_model: Machine, committing: Callable[[], Any]
) -> None:
    assert attach(api, mill, failure_model).status_code == 201
    with committing():
        attachments_on_readings(team_id=failure_model.team_id, sensor_ids=[mill["vibration"].pk])
    attachment = ModelAttachment.objects.get()
    assert "temperature" in attachment.last_error
    assert not Prediction.objects.exists()


def test_bad_attachments_are_refused_with_the_reason(
    api: APIClient, owner: User, mill: dict[str, Any], failure_model: Machine
) -> None:
    other_site = site_of(owner.current_team, "Mill 2")
    elsewhere = sensor_of(other_site, "Temperature")
    cases = [
        ({"inputs": {"temperature": mill["temperature"].pk}}, 400, "vibration"),
        (
            {"inputs": {"temperature": elsewhere.pk, "vibration": mill["vibration"].pk}},
            400,
            "not a sensor of this site",
        ),
        (
            {
                "inputs": {
                    "temperature": mill["temperature"].pk,
                    "vibration": mill["vibration"].pk,
                    "pressure": mill["vibration"].pk,
                }
            },
            400,
            "pressure",
        ),
    ]
    for extra, status, words in cases:
        response = attach(api, mill, failure_model, **extra)
        assert response.status_code == status, response.json()
        assert words in response.json()["error"]["message"]
    assert attach(api, mill, failure_model).status_code == 201
    again = attach(api, mill, failure_model)
    assert again.status_code == 409
    assert ModelAttachment.objects.count() == 1


def test_another_teams_model_or_site_is_not_found_and_site_viewers_cannot_attach(
    api: APIClient, owner: User, mill: dict[str, Any], failure_model: Machine
) -> None:
    stranger = User.objects.create_user(email="stranger@example.com", password="pw-123456789")
    other_team = Team.objects.create(name="Other")
    Membership.objects.create(team=other_team, user=stranger, role="owner")
    stranger.current_team = other_team
    stranger.save()
    outsider = APIClient()
    outsider.force_authenticate(stranger)
    assert attach(outsider, mill, failure_model).status_code == 404

    viewer = User.objects.create_user(email="viewer@example.com", password="pw-123456789")
    Membership.objects.create(team=owner.current_team, user=viewer, role="editor")
    site_role(mill["site"], viewer, "viewer")
    as_viewer = APIClient()
    as_viewer.force_authenticate(viewer)
    assert attach(as_viewer, mill, failure_model).status_code == 403
    assert not ModelAttachment.objects.exists()

    assert attach(api, mill, failure_model).status_code == 201
    attachment = ModelAttachment.objects.get()
    url = reverse("api:model-attachment", args=[attachment.pk])
    assert outsider.get(url).status_code == 404
    assert as_viewer.get(url).status_code == 200
    assert as_viewer.delete(url).status_code == 403
    assert api.delete(url).status_code == 204
    assert not ModelAttachment.objects.exists()


def test_a_rule_on_the_attached_models_prediction_fires_from_readings(
    api: APIClient, owner: User, mill: dict[str, Any], failure_model: Machine, committing: Any
) -> None:
    """The issue's example end to end: a failure predictor attached to a mill's sensors
    predicts on each new set of readings, and a rule on its predicted probability of failure
    fires through the scheduler."""
    assert attach(api, mill, failure_model, min_interval_s=1).status_code == 201
    rule = rule_create(
        caller=Caller.for_session(owner),
        team=owner.current_team,
        name="Failure likely",
        series=[
            {
                "kind": "model",
                "model": failure_model.pk,
                "signal": "prediction_mean",
                "output": "failure",
                "label": "yes",
                "period_s": 3600,
            }
        ],
        condition={"series": 0, "op": "above", "value": 0.5},
        severity="critical",
    )
    now = timezone.now()
    readings = [
        {"sensor": mill["temperature"].pk, "timestamp": now.isoformat(), "value": 95.0},
        {"sensor": mill["vibration"].pk, "timestamp": now.isoformat(), "value": 50.0},
    ]
    with committing():
        answer = readings_ingest(caller=Caller.for_session(owner), readings=readings)
    assert answer["accepted"] == 2
    prediction_log.flush()
    logged = Prediction.objects.get(machine=failure_model)
    assert logged.source == "site" and logged.outputs["failure"]["value"] == "yes"

    evaluate_due_rules(now=timezone.now() + timedelta(seconds=1))
    rule.refresh_from_db()
    assert rule.state == "firing"
    alert = Alert.objects.get(rule=rule)
    assert (alert.state, alert.machine_id, alert.severity) == (
        "firing",
        failure_model.pk,
        "critical",
    )
