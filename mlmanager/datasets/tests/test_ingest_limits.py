"""MLMANAGER_MAX_ROWS and MLMANAGER_MAX_CELLS through the real upload and worker: a file past a
cap ends `failed` with the cap's message and leaves no file behind."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mlmanager.datasets.files import local_path
from mlmanager.datasets.models import Dataset
from mlmanager.jobs.models import Job


def _parquet_bomb() -> io.BytesIO:
    """200 000 rows of one repeated value in a few KB (the probe's was 30 M rows in 368 KB)."""
    batch = pa.table({"plan": pa.array(["premium"] * 50_000)})
    buffer = io.BytesIO()
    with pq.ParquetWriter(buffer, batch.schema, compression="zstd") as writer:
        for _ in range(4):
            writer.write_table(batch)
    buffer.seek(0)
    buffer.name = "bomb.parquet"
    return buffer


def _csv(rows: int) -> io.BytesIO:
    buffer = io.BytesIO(b"a,b,c\n" + b"1,2,3\n" * rows)
    buffer.name = "table.csv"
    return buffer


def _upload_and_process(api, run_jobs, upload: io.BytesIO) -> Dataset:
    response = api.post("/api/v1/datasets/", {"file": upload}, format="multipart")
    assert response.status_code == 202, response.content
    run_jobs()
    return Dataset.objects.get()


def _assert_failed_with_nothing_kept(dataset: Dataset, message: str) -> None:
    assert dataset.status == Dataset.Status.FAILED
    assert dataset.error == message
    assert dataset.job is not None
    assert Job.objects.get(pk=dataset.job.pk).status == Job.Status.FAILED
    assert not local_path(dataset.storage_dir).exists()


def test_parquet_bomb_fails_from_its_footer_with_nothing_kept(api, run_jobs, settings) -> None:
    settings.MLMANAGER_MAX_ROWS = 100_000
    dataset = _upload_and_process(api, run_jobs, _parquet_bomb())
    _assert_failed_with_nothing_kept(
        dataset,
        "The file has 200,000 rows; this server accepts at most 100,000 (MLMANAGER_MAX_ROWS).",
    )
    assert api.get(f"/api/v1/datasets/{dataset.pk}/").json()["error"] == dataset.error


def test_csv_past_the_cell_cap_fails_with_nothing_kept(api, run_jobs, settings) -> None:
    settings.MLMANAGER_MAX_CELLS = 299
    dataset = _upload_and_process(api, run_jobs, _csv(100))
    _assert_failed_with_nothing_kept(
        dataset,
        "The file has more than 299 cells (rows × columns); this server accepts at most 299 "
        "(MLMANAGER_MAX_CELLS).",
    )


def test_a_file_exactly_at_both_caps_is_ready(api, run_jobs, settings) -> None:
    settings.MLMANAGER_MAX_ROWS = 100
    settings.MLMANAGER_MAX_CELLS = 300
    dataset = _upload_and_process(api, run_jobs, _csv(100))
    assert dataset.status == Dataset.Status.READY, dataset.error
    assert (dataset.row_count, dataset.column_count) == (100, 3)
    assert Path(local_path(dataset.parquet_path)).is_file()
