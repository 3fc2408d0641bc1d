"""GET /api/v1/models/{id}/versions/{n}/export/?format=onnx|mlflow and
POST /api/v1/models/{id}/versions/{n}/mlflow/register/: formats, errors, team isolation."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest
import yaml

from mlmanager.core.tests.factories import api_client_for, member
from mlmanager.machines.models import Machine
from mlmanager.machines.tests.conftest import make_version


def _machine(user: Any, make_dataset: Any, *, outputs: list[dict[str, Any]] | None = None) -> Any:
    dataset = make_dataset(user)
    return Machine.objects.create(
        team=user.current_team,
        created_by=user,
        name="Churn model",
        dataset=dataset,
        inputs=["plan", "monthly_fee", "tenure_months"],
        outputs=outputs or [{"name": "churned", "task": "binary", "metric": "roc_auc"}],
        time_budget_s=60,
        storage_dir=f"models/team-{user.current_team_id}/exports-test",
    )


def _export_url(machine: Any, number: int = 1, query: str = "") -> str:
    return f"/api/v1/models/{machine.pk}/versions/{number}/export/{query}"


def _register_url(machine: Any, number: int = 1) -> str:
    return f"/api/v1/models/{machine.pk}/versions/{number}/mlflow/register/"


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] == code, error
    assert error["message"]
    return error


@pytest.mark.django_db
def test_another_teams_version_is_not_found_for_export_and_register(
    owner: Any, make_dataset: Any, settings: Any
) -> None:
    settings.MLFLOW_TRACKING_URI = "http://127.0.0.1:9"  # never reached: 404 comes first
    machine = _machine(owner, make_dataset)
    make_version(machine)
    stranger = api_client_for(member("owner"))
    for query in ("?format=mlflow", "?format=onnx", "?format=zip"):
        _error(stranger.get(_export_url(machine, query=query)), 404, "not_found")
    _error(stranger.post(_register_url(machine)), 404, "not_found")
    own = api_client_for(owner)
    _error(own.get(_export_url(machine, number=2, query="?format=mlflow")), 404, "not_found")
    _error(own.post(_register_url(machine, number=2)), 404, "not_found")


@pytest.mark.django_db
def test_a_viewer_may_export_but_not_register(owner: Any, make_dataset: Any, settings: Any) -> None:
    settings.MLFLOW_TRACKING_URI = "http://127.0.0.1:9"
    machine = _machine(owner, make_dataset)
    make_version(machine)
    viewer = api_client_for(member("viewer", team=owner.current_team))
    _error(viewer.get(_export_url(machine)), 400, "invalid_format")
    _error(viewer.post(_register_url(machine)), 403, "permission_denied")


@pytest.mark.django_db
def test_unknown_or_missing_format_is_400(api: Any, owner: Any, make_dataset: Any) -> None:
    machine = _machine(owner, make_dataset)
    make_version(machine)
    _error(api.get(_export_url(machine)), 400, "invalid_format")
    _error(api.get(_export_url(machine, query="?format=pmml")), 400, "invalid_format")


@pytest.mark.django_db
def test_register_without_mlflow_configured_is_409(
    api: Any, owner: Any, make_dataset: Any, settings: Any
) -> None:
    settings.MLFLOW_TRACKING_URI = ""
    machine = _machine(owner, make_dataset)
    make_version(machine)
    _error(api.post(_register_url(machine)), 409, "mlflow_not_configured")


@pytest.mark.django_db
def test_an_image_version_cannot_be_exported_as_mlflow(
    api: Any, owner: Any, make_dataset: Any
) -> None:
    machine = _machine(
        owner, make_dataset, outputs=[{"name": "label", "task": "classification", "metric": "f1"}]
    )
    make_version(machine)
    error = _error(api.get(_export_url(machine, query="?format=mlflow")), 409, "export_unsupported")
    assert error["message"] == "Image models cannot be exported as MLflow models yet."


@pytest.mark.django_db
def test_a_version_whose_artifact_is_gone_is_409_not_500(
    api: Any, owner: Any, make_dataset: Any
) -> None:
    machine = _machine(owner, make_dataset)
    version = make_version(machine)
    version.outputs[0]["artifact"] = f"{machine.storage_dir}/run-1/output-1/model.joblib"
    version.save(update_fields=["outputs"])
    _error(api.get(_export_url(machine, query="?format=mlflow")), 409, "artifact_invalid")


@pytest.mark.django_db
def test_onnx_format_answers_the_onnx_file(
    api: Any, owner: Any, make_dataset: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    machine = _machine(owner, make_dataset)
    make_version(machine)
    seen: list[Any] = []

    def onnx_model_bytes(*, version: Any) -> bytes:
        seen.append(version)
        return b"onnx-bytes"

    monkeypatch.setattr(
        "mlmanager.machines.services.onnx_export.onnx_model_bytes", onnx_model_bytes
    )
    response = api.get(_export_url(machine, query="?format=onnx"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"] == 'attachment; filename="Churn-model-v1.onnx"'
    assert response.content == b"onnx-bytes"
    assert [version.number for version in seen] == [1]


def test_the_mlflow_zip_of_a_trained_version(
    api: Any, owner: Any, make_dataset: Any, run_jobs: Any
) -> None:
    """The real engine's version as an MLflow model directory: its files, the MLmodel's
    flavour, signature and checksums (served by MLflow in test_mlflow.py)."""
    dataset = make_dataset(owner)
    created = api.post(
        "/api/v1/models/",
        {
            "dataset": dataset.pk,
            "name": "Churn",
            "inputs": ["plan", "monthly_fee", "tenure_months"],
            "outputs": ["churned"],
            "time_budget_s": 600,
        },
        format="json",
    ).json()
    api.post(f"/api/v1/models/{created['id']}/start_training/", {"seed": 1}, format="json")
    run_jobs()
    machine = Machine.objects.get(pk=created["id"])
    response = api.get(_export_url(machine, query="?format=mlflow"))
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == 'attachment; filename="Churn-v1.zip"'
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert sorted(archive.namelist()) == [
        "MLmodel",
        "artifacts/mlmanager/manifest.json",
        "artifacts/mlmanager/output-1.joblib",
        "conda.yaml",
        "input_example.json",
        "python_env.yaml",
        "python_model.py",
        "requirements.txt",
        "serving_input_example.json",
    ]
    mlmodel = yaml.safe_load(archive.read("MLmodel"))
    flavour = mlmodel["flavors"]["python_function"]
    assert flavour["loader_module"] == "mlflow.pyfunc.loaders.code_model"
    assert flavour["model_code_path"] == "python_model.py"
    import hashlib

    manifest_bytes = archive.read("artifacts/mlmanager/manifest.json")
    assert flavour["config"] == {"manifest_sha256": hashlib.sha256(manifest_bytes).hexdigest()}
    manifest = json.loads(manifest_bytes)
    artifact = archive.read("artifacts/mlmanager/output-1.joblib")
    assert manifest["outputs"][0]["sha256"] == hashlib.sha256(artifact).hexdigest()
    assert manifest["inputs"] == ["plan", "monthly_fee", "tenure_months"]
    inputs = json.loads(mlmodel["signature"]["inputs"])
    assert inputs == [
        {"type": "string", "name": "plan", "required": False},
        {"type": "double", "name": "monthly_fee", "required": False},
        {"type": "double", "name": "tenure_months", "required": False},
    ]
    outputs = json.loads(mlmodel["signature"]["outputs"])
    assert outputs == [
        {"type": "boolean", "name": "predicted_churned", "required": True},
        {"type": "double", "name": "probability_churned_false", "required": True},
        {"type": "double", "name": "probability_churned_true", "required": True},
    ]
    example = json.loads(archive.read("input_example.json"))
    assert example["columns"] == ["plan", "monthly_fee", "tenure_months"]
    assert len(example["data"]) == 3
    assert "MLMANAGER_ARTIFACT_KEY" in archive.read("python_model.py").decode()
    # The key that signs artifacts is never in the export.
    from mlmanager.machines import files

    key = files.artifact_key()
    for name in archive.namelist():
        content = archive.read(name)
        assert key not in content and key.hex().encode() not in content
