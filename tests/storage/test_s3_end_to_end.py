"""The main loop on S3-compatible storage, with the jobs run by a "worker" that shares nothing
with the web but the database and the bucket.

One process plays both machines in turn: each has its own data folder (MEDIA_ROOT and the
storage's cache and scratch folder), and while the worker runs the web's folder is moved away,
so a job that reached for it would fail, or create it again, and the test would see either.
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from mlmanager.machines.tests.conftest import BUDGET_S, churn_frame
from mlmanager.predictions import serving
from tests.storage.conftest import S3


class Machines:
    """Switches this process between the web machine and the worker machine."""

    def __init__(self, settings: Any, tmp_path: Path):
        self.settings = settings
        self.web = tmp_path / "web"
        self.worker = tmp_path / "worker"
        self.web.mkdir()
        self.worker.mkdir()
        self.be(self.web)

    def be(self, root: Path) -> None:
        self.settings.MEDIA_ROOT = root / "media"
        self.settings.MLMANAGER_STORAGE_WORK_DIR = root / "storage"
        serving.cache.clear()  # loaded models are per process, hence per machine

    def run_jobs_on_the_worker(self, run_jobs: Callable[[], None]) -> None:
        hidden = self.web.with_name("web-hidden-from-the-worker")
        os.rename(self.web, hidden)
        try:
            self.be(self.worker)
            run_jobs()
            assert not self.web.exists(), "the worker wrote to the web's data folder"
        finally:
            shutil.rmtree(self.web, ignore_errors=True)
            os.rename(hidden, self.web)
            self.be(self.web)


def local_files(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


def test_upload_train_predict_and_batch_with_a_worker_on_another_disk(
    s3: S3, settings: Any, tmp_path: Path, api: APIClient, run_jobs: Callable[[], None]
) -> None:
    settings.MLMANAGER_TRAINING_MAX_CANDIDATES = 2  # bounded by candidates, not by seconds
    machines = Machines(settings, tmp_path)
    frame = churn_frame(rows=300)

    # The web keeps the upload in the bucket and queues its processing.
    upload = SimpleUploadedFile("churn.csv", frame.to_csv(index=False).encode(), "text/csv")
    response = api.post("/api/v1/datasets/", {"file": upload}, format="multipart")
    assert response.status_code == 202, response.content
    dataset_id = response.json()["id"]
    machines.run_jobs_on_the_worker(run_jobs)
    dataset = api.get(f"/api/v1/datasets/{dataset_id}/").json()
    assert dataset["status"] == "ready", dataset
    assert dataset["row_count"] == 300

    # Training runs on the worker, which publishes the signed artifacts to the bucket.
    created = api.post(
        "/api/v1/models/",
        {"dataset": dataset_id, "outputs": ["churned"], "time_budget_s": BUDGET_S},
        format="json",
    )
    assert created.status_code == 201, created.content
    model_url = f"/api/v1/models/{created.json()['id']}"
    assert api.post(f"{model_url}/start_training/", format="json").status_code == 202
    machines.run_jobs_on_the_worker(run_jobs)
    status = api.get(f"{model_url}/training_status/").json()
    assert status["status"] == "ready", status
    artifacts = [key for key in s3.stored_keys() if key.startswith("files/models/")]
    assert any(key.endswith(".sig") for key in artifacts)
    assert not [key for key in artifacts if ".partial" in key]

    # The web predicts with the model it fetched (and verified) from the bucket itself.
    rows = frame[["plan", "monthly_fee", "tenure_months"]].head(3).to_dict(orient="records")
    predicted = api.post(f"{model_url}/predict/", {"rows": rows}, format="json")
    assert predicted.status_code == 200, predicted.content
    assert len(predicted.json()["predictions"]) == 3

    # A batch: the upload goes to the bucket, the worker predicts, the web streams the result.
    batch_rows = frame.drop(columns=["churned", "spend"])
    upload = SimpleUploadedFile("rows.csv", batch_rows.to_csv(index=False).encode(), "text/csv")
    queued = api.post(f"{model_url}/batch_predictions/", {"file": upload}, format="multipart")
    assert queued.status_code == 202, queued.content
    batch_id = queued.json()["id"]
    machines.run_jobs_on_the_worker(run_jobs)
    batch = api.get(f"/api/v1/batch_predictions/{batch_id}/").json()
    assert batch["status"] == "succeeded", batch
    downloaded = api.get(batch["download_url"])
    assert downloaded.status_code == 200
    result = pd.read_csv(io.BytesIO(b"".join(downloaded.streaming_content)))
    assert len(result) == 300
    assert "predicted_churned" in result.columns
    assert result["customer_id"].tolist() == batch_rows["customer_id"].tolist()

    # Every file is in the bucket; neither machine kept one in its media folder, and each
    # machine's own folder holds only its cache (the worker's scratch files are gone).
    keys = s3.stored_keys()
    assert any(key.startswith("files/datasets/") and key.endswith("data.parquet") for key in keys)
    assert any(key.startswith("files/batches/") and key.endswith("predictions.csv") for key in keys)
    assert not [key for key in keys if key.endswith((".part", "input.parquet"))]
    for root in (machines.web, machines.worker):
        assert not (root / "media").exists() or local_files(root / "media") == []
        assert [path for path in local_files(root) if not path.startswith("storage/cache/")] == []
    # The web fetched only the model it served; the upload it wrote and the result it
    # streamed were never kept on its disk.
    model_files = {key.rsplit("/", 1)[1] for key in keys if key.startswith("files/models/")}
    web_cached = {Path(path).name for path in local_files(machines.web / "storage")}
    assert web_cached and web_cached <= model_files
