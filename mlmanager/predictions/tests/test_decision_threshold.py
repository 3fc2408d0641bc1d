"""A version's decision threshold chooses the label of two-class predictions everywhere: the
API (as the predict page does, through the same engine `predict_rows`) and batch files. Without
one, the more probable class, as before."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.linear_model import LogisticRegression

from mlmanager.accounts.caller import Caller
from mlmanager.datasets.files import local_path
from mlmanager.engine.artifacts import write_artifact
from mlmanager.engine.prediction import predict_table
from mlmanager.engine.training import TrainedModel
from mlmanager.engine.training.preprocessing import build_preprocessor
from mlmanager.machines import files
from mlmanager.machines.models import Machine, ModelVersion, machine_storage_dir
from mlmanager.machines.services import version_set_threshold
from mlmanager.predictions import serving


def _version(owner: Any) -> ModelVersion:
    """A version whose model says "yes" with a probability that grows with `x`."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=300)})
    inputs = [("x", "numeric")]
    preprocessor = build_preprocessor(inputs, frame)
    labels = np.where(frame["x"] + rng.normal(0, 0.5, 300) > 0, "yes", "no")
    model = TrainedModel(
        output="churned",
        task="binary",
        metric="roc_auc",
        inputs=inputs,
        preprocessor=preprocessor,
        estimator=LogisticRegression().fit(preprocessor.fit_transform(frame), labels == "yes"),
        estimator_name="lrl1",
        classes=["no", "yes"],
    )
    machine = Machine.objects.create(
        team=owner.current_team,
        created_by=owner,
        name="Churn",
        inputs=["x"],
        outputs=[{"name": "churned", "task": "binary", "metric": "roc_auc"}],
        time_budget_s=60,
        storage_dir=machine_storage_dir(owner.current_team_id),
    )
    artifact = f"{machine.storage_dir}/run-1/output-1/model.joblib"
    path = local_path(artifact)
    path.parent.mkdir(parents=True, exist_ok=True)
    signature = write_artifact(model, path, key=files.artifact_key())
    version = ModelVersion.objects.create(
        team_id=machine.team_id,
        machine=machine,
        number=1,
        outcome=ModelVersion.Outcome.SUCCEEDED,
        storage_dir=f"{machine.storage_dir}/run-1",
        inputs=[{"name": "x", "type": "numeric"}],
        outputs=[
            {
                "name": "churned",
                "task": "binary",
                "metric": "roc_auc",
                "metrics": {},
                "artifact": artifact,
                "artifact_signature": signature,
            }
        ],
    )
    Machine.objects.filter(pk=machine.pk).update(active_version=version)
    return version


@pytest.mark.django_db
def test_the_threshold_decides_the_label_in_the_api_and_in_batches(owner: Any, api: Any) -> None:
    version = _version(owner)
    url = f"/api/v1/models/{version.machine_id}/predict/"
    rows = {"rows": [{"x": -0.6}, {"x": 0.0}, {"x": 2.0}]}

    before = api.post(url, rows, format="json").json()["predictions"]
    chances = [round(prediction["probabilities"]["yes"], 2) for prediction in before]
    assert chances == [0.11, 0.48, 1.0]  # what the labels are chosen from
    assert [prediction["churned"] for prediction in before] == ["no", "no", "yes"]

    version_set_threshold(caller=Caller.for_session(owner), version=version, threshold=0.3)
    after = api.post(url, rows, format="json").json()["predictions"]
    # The version is served from the cache: its new threshold applies all the same.
    assert [prediction["churned"] for prediction in after] == ["no", "yes", "yes"]
    assert [prediction["probabilities"] for prediction in after] == [
        prediction["probabilities"] for prediction in before
    ]

    version_set_threshold(caller=Caller.for_session(owner), version=version, threshold=0.01)
    served = serving.served_version(ModelVersion.objects.get(pk=version.pk))
    table = predict_table(served.predictor, pa.table({"x": [-0.6, 0.0, 2.0]}))
    assert table.column("predicted_churned").to_pylist() == ["yes", "yes", "yes"]
    version_set_threshold(caller=Caller.for_session(owner), version=version, threshold=None)
    served = serving.served_version(ModelVersion.objects.get(pk=version.pk))
    table = predict_table(served.predictor, pa.table({"x": [-0.6, 0.0, 2.0]}))
    assert table.column("predicted_churned").to_pylist() == ["no", "no", "yes"]
