"""MLflow interop: runs logged to a tracking server, versions registered, and the exported
MLflow model served by `mlflow models serve` with MLManager's own predictions.

The payloads are checked against httpx's MockTransport (fast). The tests marked `mlflow` run
a real `mlflow server` and `mlflow models serve` from MLflow's own venv (bench/.venv-serving,
`make bench-serving-venv`; `make test-postgres` builds it first): they fail, never skip, when
that venv is missing.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlmanager.jobs.models import Job
from mlmanager.machines.models import Machine, ModelVersion, TrainingRun
from mlmanager.machines.services import mlflow_tracking
from mlmanager.machines.services.mlflow_tracking import (
    MLFLOW_LOG,
    MlflowClient,
    MlflowError,
    artifact_root_path,
    run_log,
)
from mlmanager.machines.tests.conftest import BUDGET_S, churn_frame

SERVING_BIN = Path(__file__).resolve().parents[3] / "bench" / ".venv-serving" / "bin"
INPUTS = ["plan", "monthly_fee", "tenure_months"]
# How long a process of MLflow's may take to answer its first request (the tracking server
# migrates its database first: 30-40 s on a busy 2-core machine).
START_DEADLINE_S = 240.0


def _create_and_train(api: Any, dataset: Any, run_jobs: Any, **body: Any) -> Machine:
    created = api.post(
        "/api/v1/models/",
        {
            "dataset": dataset.pk,
            "name": "Churn",
            "inputs": INPUTS,
            "outputs": ["churned"],
            "time_budget_s": BUDGET_S,
            **body,
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    machine_id = created.json()["id"]
    started = api.post(f"/api/v1/models/{machine_id}/start_training/", {"seed": 3}, format="json")
    assert started.status_code == 202, started.json()
    run_jobs()
    return Machine.objects.get(pk=machine_id)


# --- payloads, against MockTransport -------------------------------------------------------------


class FakeMlflow:
    """Answers MLflow's REST calls the way the server does, and keeps what it was sent."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        self.uploads: dict[str, bytes] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        body: Any = None
        if request.method == "PUT":
            self.uploads[path.split("/artifacts/1/r1/artifacts/", 1)[1]] = request.content
        elif request.content:
            body = json.loads(request.content)
        else:
            body = dict(request.url.params)
        self.calls.append((request.method, path, body))
        if path.endswith("experiments/get-by-name"):
            return httpx.Response(
                404,
                json={"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no experiment"},
            )
        answers = {
            "experiments/create": {"experiment_id": "1"},
            "runs/search": {},
            "model-versions/create": {
                "model_version": {"name": "registered", "version": "4", "run_id": "r1"}
            },
            "runs/create": {
                "run": {
                    "info": {"run_id": "r1", "artifact_uri": "mlflow-artifacts:/1/r1/artifacts"}
                }
            },
        }
        for endpoint, answer in answers.items():
            if path.endswith(endpoint):
                return httpx.Response(200, json=answer)
        return httpx.Response(200, json={})

    def bodies(self, endpoint: str) -> list[Any]:
        return [body for _method, path, body in self.calls if path.endswith(endpoint)]


def test_a_run_becomes_params_metrics_with_steps_tags_and_artifacts(
    api: Any, owner: Any, make_dataset: Any, run_jobs: Any, fake_engine: Any, monkeypatch: Any
) -> None:
    machine = _create_and_train(api, make_dataset(owner), run_jobs)
    run = TrainingRun.objects.select_related("machine__team", "version").get(machine=machine)
    TrainingRun.objects.filter(pk=run.pk).update(
        score_curve={"eval_method": "cv", "outputs": {"churned": [[0.5, 0.7], [1.25, 0.75]]}}
    )
    run.refresh_from_db()
    # The model directory itself is checked in test_exports_api and served below.
    monkeypatch.setattr(mlflow_tracking, "mlflow_model_files", lambda *, version: {"MLmodel": b"m"})
    fake = FakeMlflow()
    client = MlflowClient("http://mlflow.test", transport=httpx.MockTransport(fake))

    logged = run_log(client, run=run)

    assert logged == {
        "experiment_id": "1",
        "run_id": "r1",
        "artifact_uri": "mlflow-artifacts:/1/r1/artifacts",
    }
    team = machine.team.name
    assert fake.bodies("experiments/create") == [
        {"name": f"mlmanager/{team}/Churn (#{machine.pk})"}
    ]
    created = fake.bodies("runs/create")[0]
    assert created["run_name"] == f"run {run.pk} (v1)"
    assert created["start_time"] == int(run.created_at.timestamp() * 1000)
    assert {tag["key"]: tag["value"] for tag in created["tags"]} == {
        "mlmanager.model_id": str(machine.pk),
        "mlmanager.model_name": "Churn",
        "mlmanager.run_id": str(run.pk),
        "mlmanager.version": "1",
        "mlmanager.team": team,
        "mlmanager.outcome": "succeeded",
        "mlflow.runName": f"run {run.pk} (v1)",
        "mlflow.source.name": "MLManager",
    }
    batches = fake.bodies("runs/log-batch")
    params = {item["key"]: item["value"] for item in batches[0]["params"]}
    dataset = run.spec.get("dataset") or {}
    assert params == {
        "inputs": "plan,monthly_fee,tenure_months",
        "outputs": "churned:binary:roc_auc",
        "time_budget_s": str(BUDGET_S),
        "seed": "3",
        "max_candidates": "2",
        "dataset_id": str(machine.dataset_id),
        **({"dataset_checksum": dataset["checksum"]} if dataset.get("checksum") else {}),
        **({"dataset_rows": str(dataset["rows"])} if dataset.get("rows") is not None else {}),
        "churned.best_estimator": "lgbm",
    }
    metrics = batches[1]["metrics"]
    start = created["start_time"]
    assert [m for m in metrics if m["key"] == "search_score/churned"] == [
        {"key": "search_score/churned", "value": 0.7, "timestamp": start + 500, "step": 0},
        {"key": "search_score/churned", "value": 0.75, "timestamp": start + 1250, "step": 1},
    ]
    holdout = {m["key"]: m["value"] for m in metrics if m["key"].startswith("holdout/")}
    # Numbers only: NaN (log_loss) and the plots' dicts are left out.
    assert holdout == {
        "holdout/churned/roc_auc": 0.8,
        "holdout/churned/accuracy": 0.9,
        "holdout/churned/holdout_rows": 12.0,
    }
    assert {m["step"] for m in metrics if m["key"] != "search_score/churned"} == {0}
    assert sorted(fake.uploads) == ["leaderboard.csv", "metrics.json", "model/MLmodel"]
    assert fake.uploads["leaderboard.csv"].decode().splitlines() == [
        "output,rank,estimator,score,fit_time_s,config",
        'churned,1,lgbm,0.8,0.1,"{""n_estimators"": 4}"',
    ]
    assert json.loads(fake.uploads["metrics.json"])["churned"]["metrics"]["roc_auc"] == 0.8
    assert fake.bodies("runs/update")[0]["status"] == "FINISHED"
    assert fake.bodies("runs/set-tag") == [
        {"run_id": "r1", "key": "mlmanager.complete", "value": "true"}
    ]


def test_registering_logs_the_run_registers_it_and_is_audited(
    api: Any,
    owner: Any,
    make_dataset: Any,
    run_jobs: Any,
    fake_engine: Any,
    settings: Any,
    monkeypatch: Any,
) -> None:
    from mlmanager.audit.models import AuditEvent

    machine = _create_and_train(api, make_dataset(owner), run_jobs)
    settings.MLFLOW_TRACKING_URI = "http://mlflow.test"
    monkeypatch.setattr(mlflow_tracking, "mlflow_model_files", lambda *, version: {"MLmodel": b"m"})
    fake = FakeMlflow()
    monkeypatch.setattr(
        mlflow_tracking, "MlflowClient", partial(MlflowClient, transport=httpx.MockTransport(fake))
    )
    response = api.post(f"/api/v1/models/{machine.pk}/versions/1/mlflow/register/")
    assert response.status_code == 200, response.json()
    assert response.json() == {
        "name": "registered",
        "version": 4,
        "run_id": "r1",
        "source": "mlflow-artifacts:/1/r1/artifacts/model",
    }
    name = f"mlmanager.{machine.team.name}.Churn (#{machine.pk})"
    assert fake.bodies("registered-models/create") == [{"name": name}]
    created = fake.bodies("model-versions/create")[0]
    assert (created["name"], created["source"], created["run_id"]) == (
        name,
        "mlflow-artifacts:/1/r1/artifacts/model",
        "r1",
    )
    event = AuditEvent.objects.get(action="model_version.mlflow_registered")
    assert (event.team_id, event.details) == (
        machine.team_id,
        {"name": "registered", "mlflow_version": 4},
    )

    monkeypatch.setattr(mlflow_tracking, "BACKOFF_S", 0.0)
    down = httpx.MockTransport(lambda request: httpx.Response(503, text="unavailable"))
    monkeypatch.setattr(mlflow_tracking, "MlflowClient", partial(MlflowClient, transport=down))
    failed = api.post(f"/api/v1/models/{machine.pk}/versions/1/mlflow/register/")
    assert failed.status_code == 502
    assert failed.json()["error"]["code"] == "mlflow_failed"
    assert AuditEvent.objects.filter(action="model_version.mlflow_registered").count() == 1


def test_nothing_is_queued_without_a_tracking_uri(
    api: Any, owner: Any, make_dataset: Any, run_jobs: Any, fake_engine: Any, settings: Any
) -> None:
    settings.MLFLOW_TRACKING_URI = ""
    _create_and_train(api, make_dataset(owner), run_jobs)
    assert not Job.objects.filter(kind=MLFLOW_LOG).exists()


def test_a_server_that_is_down_is_retried_then_the_job_fails_loudly_not_the_training(
    api: Any,
    owner: Any,
    make_dataset: Any,
    run_jobs: Any,
    fake_engine: Any,
    settings: Any,
    monkeypatch: Any,
) -> None:
    settings.MLFLOW_TRACKING_URI = "http://mlflow.test"
    monkeypatch.setattr(mlflow_tracking, "BACKOFF_S", 0.0)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    monkeypatch.setattr(
        mlflow_tracking,
        "MlflowClient",
        partial(MlflowClient, transport=httpx.MockTransport(refuse)),
    )
    machine = _create_and_train(api, make_dataset(owner), run_jobs)
    assert machine.active_version is not None and machine.active_version.number == 1
    training = TrainingRun.objects.get(machine=machine).job
    assert training.status == Job.Status.SUCCEEDED
    logging_job = Job.objects.get(kind=MLFLOW_LOG)
    assert logging_job.status == Job.Status.FAILED
    assert logging_job.team_id == machine.team_id
    assert logging_job.error == "MLflow at http://mlflow.test did not answer: ConnectError"
    retries = [line for line in logging_job.log.splitlines() if "Trying again" in line]
    assert len(retries) == mlflow_tracking.ATTEMPTS - 1
    assert retries[0].endswith(
        "MLflow at http://mlflow.test did not answer: ConnectError Trying again in 0 s "
        "(try 2 of 3)."
    )


def test_a_refusal_is_not_retried() -> None:
    calls: list[str] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(400, json={"error_code": "INVALID_PARAMETER_VALUE", "message": "no"})

    client = MlflowClient("http://mlflow.test", transport=httpx.MockTransport(refuse))
    with pytest.raises(MlflowError) as raised:
        client.post("runs/create", {})
    assert (raised.value.code, raised.value.status, len(calls)) == (
        "INVALID_PARAMETER_VALUE",
        400,
        1,
    )
    assert raised.value.message == ("MLflow refused /api/2.0/mlflow/runs/create (HTTP 400): no")


def test_artifact_uris_must_be_proxied_by_the_server() -> None:
    assert artifact_root_path("mlflow-artifacts:/1/abc/artifacts") == "1/abc/artifacts"
    assert artifact_root_path("mlflow-artifacts://host:5000/1/abc/artifacts") == "1/abc/artifacts"
    with pytest.raises(MlflowError) as raised:
        artifact_root_path("/srv/mlruns/1/abc/artifacts")
    assert raised.value.code == "ARTIFACTS_NOT_PROXIED"


# --- a real MLflow, from its own venv ------------------------------------------------------------


def _serving_bin(name: str) -> Path:
    executable = SERVING_BIN / name
    if not executable.exists():
        pytest.fail(
            f"{executable} is missing: build MLflow's venv with `make bench-serving-venv` "
            "(`make test-postgres` does it first)."
        )
    return executable


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class MlflowProcess:
    """A process of MLflow's started in the background; `wait(path)` polls until it answers."""

    def __init__(self, command: list[str], *, port: int, log: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        environment = {
            key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")
        }
        # `mlflow models serve` execs `uvicorn` by name: MLflow's venv first on the PATH.
        environment["PATH"] = f"{SERVING_BIN}{os.pathsep}{environment.get('PATH', '')}"
        self.handle = log.open("wb")
        self.process = subprocess.Popen(
            command,
            stdout=self.handle,
            stderr=subprocess.STDOUT,
            env=environment,
            start_new_session=True,
        )

    def wait(self, path: str) -> None:
        deadline = time.monotonic() + START_DEADLINE_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"{self.url} exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}{path}", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)  # polling for readiness, not timing anything
        pytest.fail(f"{self.url} did not answer within {START_DEADLINE_S} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.handle.close()


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[MlflowProcess]:
    """`mlflow server` on a free port: SQLite backend and proxied artifacts in tmp_path. It is
    started here and waited for by the test (`wait`), so it starts while the model trains."""
    folder = tmp_path / "mlflow-server"
    folder.mkdir()
    port = _free_port()
    server = MlflowProcess(
        [
            str(_serving_bin("mlflow")),
            "server",
            "--backend-store-uri",
            f"sqlite:///{folder / 'mlflow.db'}",
            "--artifacts-destination",
            str(folder / "artifacts"),
            "--serve-artifacts",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        port=port,
        log=folder / "server.log",
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.mlflow
def test_a_run_is_logged_registered_exported_and_served_by_mlflow(
    api: Any,
    owner: Any,
    make_dataset: Any,
    run_jobs: Any,
    settings: Any,
    mlflow_server: MlflowProcess,
    tmp_path: Path,
) -> None:
    settings.MLFLOW_TRACKING_URI = mlflow_server.url
    dataset = make_dataset(owner)
    mlflow_server.wait("/health")
    machine = _create_and_train(api, dataset, run_jobs)
    run = TrainingRun.objects.get(machine=machine)
    version = ModelVersion.objects.get(machine=machine)
    logging_job = Job.objects.get(kind=MLFLOW_LOG)
    assert logging_job.status == Job.Status.SUCCEEDED, logging_job.log

    rest = MlflowClient(mlflow_server.url)
    name = f"mlmanager/{machine.team.name}/Churn (#{machine.pk})"
    experiment = rest.get("experiments/get-by-name", {"experiment_name": name})["experiment"]
    found = rest.find_runs(experiment["experiment_id"], run_id=run.pk)
    assert len(found) == 1
    mlflow_run = found[0]
    assert mlflow_run["info"]["status"] == "FINISHED"
    assert logging_job.result["mlflow_run_id"] == mlflow_run["info"]["run_id"]
    data = mlflow_run["data"]
    params = {item["key"]: item["value"] for item in data["params"]}
    assert (params["inputs"], params["outputs"], params["seed"], params["max_candidates"]) == (
        "plan,monthly_fee,tenure_months",
        "churned:binary:roc_auc",
        "3",
        "2",
    )
    assert params["time_budget_s"] == str(BUDGET_S)
    assert params["dataset_id"] == str(dataset.pk)
    tags = {item["key"]: item["value"] for item in data["tags"]}
    assert {
        key: tags[key]
        for key in ("mlmanager.model_id", "mlmanager.run_id", "mlmanager.version", "mlmanager.team")
    } == {
        "mlmanager.model_id": str(machine.pk),
        "mlmanager.run_id": str(run.pk),
        "mlmanager.version": "1",
        "mlmanager.team": machine.team.name,
    }
    curve = run.score_curve["outputs"]["churned"]
    history = rest.get(
        "metrics/get-history",
        {"run_id": mlflow_run["info"]["run_id"], "metric_key": "search_score/churned"},
    )["metrics"]
    assert [(point["step"], point["value"]) for point in history] == [
        (step, score) for step, (_seconds, score) in enumerate(curve)
    ]
    latest = {item["key"]: item["value"] for item in data["metrics"]}
    roc_auc = version.outputs[0]["metrics"]["roc_auc"]
    assert latest["holdout/churned/roc_auc"] == pytest.approx(roc_auc, abs=1e-12)
    listed = rest.get("artifacts/list", {"run_id": mlflow_run["info"]["run_id"]})["files"]
    assert sorted(item["path"] for item in listed) == ["leaderboard.csv", "metrics.json", "model"]
    model_files = rest.get(
        "artifacts/list", {"run_id": mlflow_run["info"]["run_id"], "path": "model"}
    )["files"]
    assert {item["path"] for item in model_files} >= {
        "model/MLmodel",
        "model/python_model.py",
        "model/artifacts",
        "model/input_example.json",
        "model/requirements.txt",
    }

    registered = api.post(f"/api/v1/models/{machine.pk}/versions/1/mlflow/register/")
    assert registered.status_code == 200, registered.json()
    registered_name = f"mlmanager.{machine.team.name}.Churn (#{machine.pk})"
    assert registered.json() == {
        "name": registered_name,
        "version": 1,
        "run_id": mlflow_run["info"]["run_id"],
        "source": f"{mlflow_run['info']['artifact_uri']}/model",
    }
    model_version = rest.get("model-versions/get", {"name": registered_name, "version": "1"})
    assert model_version["model_version"]["run_id"] == mlflow_run["info"]["run_id"]
    again = api.post(f"/api/v1/models/{machine.pk}/versions/1/mlflow/register/")
    assert again.json()["version"] == 2  # the same run, a second registry version
    assert Job.objects.filter(kind=MLFLOW_LOG).count() == 1  # found by its tag, not re-logged

    # The export, served by MLflow's scoring server, answers as MLManager does.
    exported = api.get(f"/api/v1/models/{machine.pk}/versions/1/export/?format=mlflow")
    assert exported.status_code == 200
    model_dir = tmp_path / "exported-model"
    zipfile.ZipFile(io.BytesIO(exported.content)).extractall(model_dir)
    port = _free_port()
    scoring = MlflowProcess(
        [
            str(_serving_bin("mlflow")),
            "models",
            "serve",
            "-m",
            str(model_dir),
            "--env-manager",
            "local",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        port=port,
        log=tmp_path / "scoring.log",
    )
    try:
        scoring.wait("/ping")
        rows = churn_frame(rows=6, seed=11)[INPUTS].to_dict(orient="records")
        answered = httpx.post(
            f"{scoring.url}/invocations",
            json={"dataframe_split": {"columns": INPUTS, "data": [list(r.values()) for r in rows]}},
            timeout=60,
        )
    finally:
        scoring.stop()
    assert answered.status_code == 200, answered.text
    served = answered.json()["predictions"]
    ours = api.post(f"/api/v1/models/{machine.pk}/predict/", {"rows": rows}, format="json").json()[
        "predictions"
    ]
    assert len(served) == len(ours) == 6
    for mlflow_answer, our_answer in zip(served, ours, strict=True):
        assert mlflow_answer["predicted_churned"] == our_answer["churned"]
        for label, probability in our_answer["probabilities"].items():
            assert mlflow_answer[f"probability_churned_{label}"] == pytest.approx(
                probability, abs=1e-9
            )


@pytest.mark.mlflow
def test_a_modified_export_is_refused_by_its_loader(
    api: Any, owner: Any, make_dataset: Any, run_jobs: Any, settings: Any, tmp_path: Path
) -> None:
    """The export carries checksums, not the signing key: a changed pickle is never loaded."""
    settings.MLFLOW_TRACKING_URI = ""
    machine = _create_and_train(api, make_dataset(owner), run_jobs)
    exported = api.get(f"/api/v1/models/{machine.pk}/versions/1/export/?format=mlflow")
    model_dir = tmp_path / "model"
    zipfile.ZipFile(io.BytesIO(exported.content)).extractall(model_dir)
    script = (
        "import sys, mlflow, pandas as pd\n"
        "model = mlflow.pyfunc.load_model(sys.argv[1])\n"
        "print(model.predict(pd.DataFrame([{'plan': 'pro', 'monthly_fee': 50.0, "
        "'tenure_months': 3.0}])).columns.tolist())\n"
    )
    python = str(_serving_bin("python"))
    loaded = subprocess.run(
        [python, "-c", script, str(model_dir)], capture_output=True, text=True, timeout=300
    )
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert loaded.stdout.strip().splitlines()[-1] == (
        "['predicted_churned', 'probability_churned_false', 'probability_churned_true']"
    )
    artifact = model_dir / "artifacts" / "mlmanager" / "output-1.joblib"
    artifact.write_bytes(artifact.read_bytes() + b"\0")
    refused = subprocess.run(
        [python, "-c", script, str(model_dir)], capture_output=True, text=True, timeout=300
    )
    assert refused.returncode != 0
    assert "does not match its recorded sha256; not loaded" in refused.stderr
    assert sys.executable != python  # MLflow's own venv, not the project's


def test_the_tracking_uri_is_read_from_mlflows_own_variable(monkeypatch: Any) -> None:
    from config.env import ConfigurationError, read_environment

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example.com:5000/")
    assert read_environment().mlflow_tracking_uri == "http://mlflow.example.com:5000"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")
    assert read_environment().mlflow_tracking_uri == ""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "file:///srv/mlruns")
    with pytest.raises(ConfigurationError) as raised:
        read_environment()
    assert str(raised.value) == (
        "MLFLOW_TRACKING_URI must be an http(s) address of an MLflow server, "
        "not 'file:///srv/mlruns'"
    )
