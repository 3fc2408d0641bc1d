"""/metrics: request counters, prediction counts, job metrics from the database, and access."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.db import OperationalError
from django.utils import timezone
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from mlmanager.accounts.caller import Caller
from mlmanager.core.tests.factories import member
from mlmanager.engine.prediction import Predictor
from mlmanager.jobs.models import Job, Worker
from mlmanager.machines.models import Machine, machine_storage_dir
from mlmanager.machines.tests.conftest import make_version
from mlmanager.ops.metrics import JobsCollector
from mlmanager.predictions import services as prediction_services
from mlmanager.predictions.schema import InputSchema
from mlmanager.predictions.serving import ServedVersion

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[3]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _scrape(client: Any, **headers: str) -> Samples:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def _count(name: str, **labels: str) -> float:
    """A sample of this process's registry (the counters outside multiprocess mode)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- requests -------------------------------------------------------------------------------


def test_requests_are_labelled_by_url_name_not_path(client) -> None:
    labels = {"method": "GET", "route": "api:dataset"}
    before = _count("mlmanager_http_requests_total", **labels, status="401")
    timed_before = _count("mlmanager_http_request_duration_seconds_count", **labels)

    assert client.get("/api/v1/datasets/81723/").status_code == 401
    assert client.get("/api/v1/datasets/99/").status_code == 401

    assert _count("mlmanager_http_requests_total", **labels, status="401") == before + 2
    assert _count("mlmanager_http_request_duration_seconds_count", **labels) == timed_before + 2
    assert "/81723" not in client.get("/metrics").content.decode()  # no raw path as a label


def test_unresolved_requests_and_unknown_methods_share_one_label(client, settings) -> None:
    settings.ALLOWED_HOSTS = ["testserver"]
    not_found = {"method": "GET", "route": "unmatched", "status": "404"}
    bad_host = {"method": "GET", "route": "unmatched", "status": "400"}
    other = {"method": "other", "route": "healthz", "status": "405"}
    before = [
        _count("mlmanager_http_requests_total", **labels) for labels in (not_found, bad_host, other)
    ]

    assert client.get("/no/such/page/").status_code == 404
    assert client.get("/healthz", HTTP_HOST="evil.example").status_code == 400
    assert client.generic("BREW", "/healthz").status_code == 405

    after = [
        _count("mlmanager_http_requests_total", **labels) for labels in (not_found, bad_host, other)
    ]
    assert after == [value + 1 for value in before]


# --- access ---------------------------------------------------------------------------------


def test_metrics_are_open_in_development_without_a_token(client) -> None:
    samples = _scrape(client)
    assert samples[("mlmanager_job_metrics_up", ())] == 1


def test_metrics_are_hidden_in_production_without_a_token(client, settings) -> None:
    settings.MLMANAGER_METRICS_TOKEN = ""
    settings.MLMANAGER_METRICS_OPEN = False
    assert client.get("/metrics").status_code == 404


@pytest.mark.parametrize("open_without_token", [True, False])
def test_a_token_is_required_when_set(client, settings, open_without_token: bool) -> None:
    settings.MLMANAGER_METRICS_TOKEN = "s3cret-scrape-token"
    settings.MLMANAGER_METRICS_OPEN = open_without_token
    missing = client.get("/metrics")
    assert missing.status_code == 401
    assert missing["WWW-Authenticate"] == 'Bearer realm="metrics"'
    for wrong in ("Bearer s3cret-scrape-toke", "s3cret-scrape-token", "Bearer s3cret-scrape-tokén"):
        assert client.get("/metrics", HTTP_AUTHORIZATION=wrong).status_code == 401
    assert _scrape(client, HTTP_AUTHORIZATION="Bearer s3cret-scrape-token")


# --- predictions ----------------------------------------------------------------------------


class _ConstantModel:
    """Stands in for a trained model: loading and running real artifacts is the engine's."""

    output, task, classes = "spend", "regression", None

    def predict(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        return np.full(len(next(iter(columns.values()))), 42.0)


def test_predictions_are_counted_by_rows_and_source(owner, monkeypatch) -> None:
    machine = Machine.objects.create(
        team=owner.current_team,
        created_by=owner,
        name="Spend",
        inputs=["tenure_months"],
        outputs=[{"name": "spend", "task": "regression", "metric": "rmse"}],
        time_budget_s=60,
        storage_dir=machine_storage_dir(owner.current_team_id),
    )
    version = make_version(machine)
    served = ServedVersion(
        version_id=version.pk,
        number=version.number,
        schema=InputSchema.of_version(version.inputs),
        predictor=Predictor.of([_ConstantModel()], inputs=["tenure_months"]),  # type: ignore[list-item]
        size_bytes=0,
    )
    monkeypatch.setattr(prediction_services, "served_version", lambda _version: served)
    before = {
        source: _count("mlmanager_predictions_total", source=source) for source in ("api", "ui")
    }

    body = prediction_services.predictions_make(
        machine=machine,
        version=version,
        payload={"rows": [{"tenure_months": months} for months in (1, 12, 30)]},
        caller=Caller.for_session(owner),
        source="ui",
    )

    assert [row["spend"] for row in body["predictions"]] == [42.0, 42.0, 42.0]
    assert _count("mlmanager_predictions_total", source="ui") == before["ui"] + 3
    assert _count("mlmanager_predictions_total", source="api") == before["api"]


# --- jobs -----------------------------------------------------------------------------------


def _job(
    team: Any, kind: str, status: str, *, queue: str = "default", ran_s: float | None = None
) -> Job:
    finished = timezone.now() - timedelta(minutes=5)
    return Job.objects.create(
        team=team,
        kind=kind,
        status=status,
        queue=queue,
        started_at=finished - timedelta(seconds=ran_s) if ran_s is not None else None,
        finished_at=finished if ran_s is not None else None,
    )


def _worker(name: str, *, heartbeat_ago_s: float, stopped: bool = False) -> Worker:
    now = timezone.now()
    return Worker.objects.create(
        name=name,
        hostname="host",
        pid=1,
        backend=Worker.Backend.DATABASE,
        queues=["default"],
        started_at=now - timedelta(hours=1),
        heartbeat_at=now - timedelta(seconds=heartbeat_ago_s),
        stopped_at=now if stopped else None,
    )


def test_job_metrics_come_from_the_database(client, settings) -> None:
    settings.MLMANAGER_JOB_STALE_S = 30
    team = member().current_team
    train, process = "machine.train", "dataset.process"
    _job(team, train, "queued", queue="training")
    _job(team, train, "queued", queue="training")
    _job(team, process, "queued")
    _job(team, process, "queued", queue="")  # a row from before jobs kept their queue
    _job(team, train, "running", queue="training")
    _job(team, process, "succeeded", ran_s=3)
    _job(team, process, "succeeded", ran_s=45)
    _job(team, train, "succeeded", queue="training", ran_s=4000)
    _job(team, train, "failed", queue="training", ran_s=0.5)
    _job(team, train, "cancelled", queue="training")  # cancelled while queued: never ran
    _worker("alive:1", heartbeat_ago_s=5)
    _worker("stale:2", heartbeat_ago_s=31)
    _worker("stopped:3", heartbeat_ago_s=5, stopped=True)

    samples = _scrape(client)

    def jobs(kind: str, status: str) -> float:
        return samples[("mlmanager_jobs", (("kind", kind), ("status", status)))]

    assert jobs(train, "queued") == 2
    assert jobs(process, "queued") == 2
    assert jobs(train, "cancelled") == 1
    assert jobs("batch.predict", "running") == 0  # every known pair, zero included
    assert sum(value for (name, _), value in samples.items() if name == "mlmanager_jobs") == 10

    depth = {
        dict(labels)["queue"]: value
        for (name, labels), value in samples.items()
        if name == "mlmanager_job_queue_depth"
    }
    assert depth == {"default": 1, "training": 2, "gpu": 0, "unknown": 1}

    def buckets(kind: str, status: str) -> dict[str, float]:
        return {
            dict(labels)["le"]: value
            for (name, labels), value in samples.items()
            if name == "mlmanager_job_duration_seconds_bucket"
            and dict(labels)["kind"] == kind
            and dict(labels)["status"] == status
        }

    processed = buckets(process, "succeeded")
    assert (processed["1.0"], processed["5.0"], processed["30.0"], processed["60.0"]) == (
        0,
        1,
        1,
        2,
    )
    assert processed["+Inf"] == 2
    trained = buckets(train, "succeeded")
    assert (trained["3600.0"], trained["7200.0"], trained["+Inf"]) == (0, 1, 1)
    assert buckets(train, "failed")["1.0"] == 1
    assert buckets(train, "cancelled") == {}  # no duration without a start
    labels = (("kind", process), ("status", "succeeded"))
    assert samples[("mlmanager_job_duration_seconds_sum", labels)] == pytest.approx(48)
    assert samples[("mlmanager_job_duration_seconds_count", labels)] == 2

    assert samples[("mlmanager_workers_alive", ())] == 1


def test_job_metrics_cost_the_same_few_queries_however_many_jobs(django_assert_num_queries) -> None:
    team = member().current_team
    for seconds in range(30):
        _job(team, "dataset.process", "succeeded", ran_s=seconds)
    with django_assert_num_queries(4):
        families = list(JobsCollector().collect())
    assert [family.name for family in families] == [
        "mlmanager_job_metrics_up",
        "mlmanager_jobs",
        "mlmanager_job_queue_depth",
        "mlmanager_job_duration_seconds",
        "mlmanager_workers_alive",
    ]


def test_metrics_still_answer_when_the_database_does_not(client, monkeypatch) -> None:
    def refuse(self: JobsCollector) -> Any:
        raise OperationalError("connection refused")

    monkeypatch.setattr(JobsCollector, "_jobs", refuse)
    client.get("/healthz")
    samples = _scrape(client)
    assert samples[("mlmanager_job_metrics_up", ())] == 0
    assert not any(name == "mlmanager_jobs" for name, _ in samples)
    assert any(name == "mlmanager_http_requests_total" for name, _ in samples)


# --- several web worker processes -----------------------------------------------------------


# Loads the application once, then forks two processes that answer one request each, as a
# gunicorn master forks its workers.
TWO_WORKERS = """
import os
import django
from django.test import Client
from django.urls import get_resolver

django.setup()
get_resolver().url_patterns
for _ in range(2):
    pid = os.fork()
    if pid == 0:
        os._exit(0 if Client().get("/healthz").status_code == 200 else 1)
    assert os.waitpid(pid, 0)[1] == 0
"""


def test_counts_of_every_worker_process_are_summed(client, monkeypatch, tmp_path: Path) -> None:
    folder = tmp_path / "prometheus"
    folder.mkdir()
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MLMANAGER_")},
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "MLMANAGER_DATA_DIR": str(tmp_path / "data"),
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
    }
    subprocess.run([sys.executable, "-c", TWO_WORKERS], cwd=ROOT, env=environment, check=True)
    assert len(list(folder.iterdir())) >= 2  # one file per process and metric type

    # This process scrapes as a third worker would.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    monkeypatch.setattr("mlmanager.ops.metrics.multiprocess_mode", lambda: True)
    samples = _scrape(client)

    labels = (("method", "GET"), ("route", "healthz"), ("status", "200"))
    assert samples[("mlmanager_http_requests_total", labels)] == 2
    assert samples[("mlmanager_job_metrics_up", ())] == 1
