"""ONNX export of a version: a real trained version converts and answers as MLManager does;
versions that cannot be exported say why, on the page and as a 409."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from django.test import Client

from mlmanager.accounts.caller import Caller
from mlmanager.core.errors import ApplicationError
from mlmanager.engine.export.onnx import onnx_feed
from mlmanager.machines import selectors, services
from mlmanager.machines.models import ModelVersion
from mlmanager.machines.services.onnx_export import onnx_export_problem, onnx_model_bytes
from mlmanager.machines.tests.conftest import BUDGET_S, churn_frame, make_version

TOLERANCE = 1e-5


def _answers(content: bytes, frame, inputs) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(content, providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(None, onnx_feed(frame, inputs)), strict=True))


@pytest.mark.django_db
def test_a_trained_version_exports_and_onnxruntime_answers_the_same(
    owner, make_dataset, run_jobs
) -> None:
    machine = services.machine_create(
        caller=Caller.for_session(owner),
        dataset=make_dataset(owner),
        outputs=["churned", "spend"],
        inputs=["plan", "monthly_fee", "tenure_months"],
        time_budget_s=BUDGET_S,
    )
    services.training_start(caller=Caller.for_session(owner), machine=machine, seed=1)
    run_jobs()
    version = ModelVersion.objects.get(machine=machine)
    assert onnx_export_problem(version=version) is None

    version.threshold = 0.35
    content = onnx_model_bytes(version=version)

    held_out = churn_frame(rows=1_000, seed=5)
    churned = selectors.version_model(version=version, output="churned")
    spend = selectors.version_model(version=version, output="spend")
    answers = _answers(content, held_out, churned.inputs)
    assert sorted(answers) == ["churned:label", "churned:probabilities", "spend:value"]
    probabilities = churned.predict_proba(held_out)
    np.testing.assert_allclose(
        answers["churned:probabilities"], probabilities, rtol=0, atol=TOLERANCE
    )
    assert answers["churned:label"].tolist() == [
        str(label) for label in churned.labels(probabilities, 0.35)
    ]
    # Amounts in the thousands, summed tree by tree in float32 (by XGBoost itself too, in
    # another order): the same to 1e-5 of the amounts' scale, not of each small amount.
    amounts = spend.predict(held_out)
    scale = float(np.abs(amounts).max())
    np.testing.assert_allclose(answers["spend:value"], amounts, rtol=0, atol=TOLERANCE * scale)


def _version_with(owner, make_dataset, **changes) -> ModelVersion:
    machine = services.machine_create(
        caller=Caller.for_session(owner), dataset=make_dataset(owner), outputs=["churned"]
    )
    version = make_version(machine)
    for field, value in changes.items():
        setattr(version, field, value)
    version.save()
    return version


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("inputs", "estimator", "task", "reason"),
    [
        (
            [{"name": "notes", "type": "text"}],
            "lgbm",
            "binary",
            "Inputs of type text cannot be exported to ONNX yet.",
        ),
        (
            [{"name": "signup", "type": "datetime"}],
            "lgbm",
            "binary",
            "Inputs of type date cannot be exported to ONNX yet.",
        ),
        (
            [{"name": "plan", "type": "categorical"}],
            "catboost",
            "binary",
            "CatBoost models cannot be exported to ONNX yet.",
        ),
        (
            [{"name": "image", "type": "image"}],
            "resnet",
            "image_classification",
            "Image models cannot be exported to ONNX yet.",
        ),
    ],
)
def test_versions_that_cannot_be_exported_say_why(
    owner, make_dataset, inputs, estimator, task, reason
) -> None:
    version = _version_with(owner, make_dataset, inputs=inputs)
    version.outputs = [{**version.outputs[0], "best_estimator": estimator, "task": task}]
    version.save()
    assert onnx_export_problem(version=version) == reason
    with pytest.raises(ApplicationError) as refused:
        onnx_model_bytes(version=version)
    assert (refused.value.code, refused.value.status_code) == ("export_unsupported", 409)
    assert refused.value.message == reason


@pytest.mark.django_db
def test_the_page_offers_each_version_s_exports_or_says_why_not(owner, make_dataset) -> None:
    machine = services.machine_create(
        caller=Caller.for_session(owner), dataset=make_dataset(owner), outputs=["churned"]
    )
    for number in (1, 2):
        version = make_version(machine, number=number, activate=number == 2)
        # A file to export (MLflow's export checks that one is recorded, not here).
        version.outputs = [{**version.outputs[0], "artifact": "fake/final.joblib"}]
        if number == 2:
            version.inputs = [*version.inputs, {"name": "notes", "type": "text"}]
        version.save()
    browser = Client()
    browser.force_login(owner)

    page = browser.get(f"/models/{machine.pk}/").content.decode()

    export = f"/api/v1/models/{machine.pk}/versions/1/export/"
    assert 'data-testid="version-exports"' in page
    assert f'href="{export}?format=onnx"' in page
    assert f'href="{export}?format=mlflow"' in page
    assert 'data-testid="export-onnx-2"' not in page
    assert (
        'data-testid="export-onnx-problem-2">Inputs of type text cannot be exported to ONNX yet.'
        in page
    )
    assert f'href="/api/v1/models/{machine.pk}/versions/2/export/?format=mlflow"' in page
