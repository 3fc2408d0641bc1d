"""The hostile-image battery end to end: upload through the API, run the real worker, look.

A hostile file inside a usable archive is skipped and listed with its reason; an archive that
cannot be used ends `failed` with the reason, its job failed, and no file left behind."""

from __future__ import annotations

import io

import pytest

from mlmanager.datasets.files import local_path
from mlmanager.datasets.models import Dataset
from mlmanager.datasets.tests.test_images_api import upload_and_process, zip_upload
from mlmanager.engine.tests.ingest.image_archives import (
    decompression_bomb_png,
    dicom,
    jpeg,
    png,
    symlink_entry,
    two_classes,
)
from mlmanager.jobs.models import Job

HOSTILE_FILES = [
    ("cat/bomb.png", decompression_bomb_png(10_000, 10_000)),
    ("cat/zipbomb.bmp", b"BM" + bytes(8 << 20)),
    ("../escape.png", png()),
    ("/etc/escape.png", png()),
    ("C:\\escape.png", png()),
    symlink_entry("dog/link.png"),
    ("dog/fake.png", b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
    ("dog/cut.jpg", jpeg(size=(64, 64))[:200]),
    ("dog/poly.png", png() + b"<html><script>alert(1)</script></html>"),
    ("dog/scan.dcm", dicom()),
]


def test_hostile_files_are_skipped_with_reasons(api, run_jobs) -> None:
    dataset = upload_and_process(api, run_jobs, zip_upload([*two_classes(2), *HOSTILE_FILES]))
    assert dataset.status == Dataset.Status.READY, dataset.error
    images = api.get(f"/api/v1/datasets/{dataset.pk}/").json()["images"]
    reasons = {entry["file"]: entry["reason"] for entry in images["skipped"]}
    assert set(reasons) == {
        "cat/bomb.png",
        "cat/zipbomb.bmp",
        "../escape.png",
        "/etc/escape.png",
        "C:\\escape.png",
        "dog/link.png",
        "dog/fake.png",
        "dog/cut.jpg",
    }
    assert "decompression bomb" in reasons["cat/bomb.png"]
    assert "zip bomb" in reasons["cat/zipbomb.bmp"]
    assert reasons["dog/link.png"] == "symbolic link: links are not followed"
    assert reasons["dog/fake.png"] == "unsupported type (SVG)"
    # The polyglot and the DICOM are kept, re-encoded.
    assert images["count"] == 6 and images["classes"] == {"cat": 2, "dog": 4}


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([("cat/a.png", png()), ("cat/b.png", png())], "Only one class (“cat”)"),
        ([("a.png", png()), ("b.png", png())], "No images found in class folders."),
        ([("cat/a.png", b"<svg/>"), ("dog/b.png", b"GIF89a")], "No images found that can be used."),
        (
            [("images/a.png", png(0, (8, 8), "L")), ("masks/a.png", png(0, (8, 8), "L"))],
            "Every mask has the same single value",
        ),
    ],
)
def test_unusable_archive_fails_with_nothing_kept(api, run_jobs, entries, message) -> None:
    dataset = upload_and_process(api, run_jobs, zip_upload(entries))
    assert dataset.status == Dataset.Status.FAILED
    assert dataset.error.startswith(message)
    assert Job.objects.get(pk=dataset.job_id).status == Job.Status.FAILED
    assert not local_path(dataset.storage_dir).exists()
    assert api.get(f"/api/v1/datasets/{dataset.pk}/images/").status_code == 409
    assert api.delete(f"/api/v1/datasets/{dataset.pk}/").status_code == 204


def test_archive_past_the_inflated_total_fails(api, run_jobs, settings) -> None:
    settings.MLMANAGER_MAX_ZIP_UNCOMPRESSED_BYTES = 1_000
    dataset = upload_and_process(api, run_jobs, zip_upload(two_classes(20)))
    assert dataset.status == Dataset.Status.FAILED
    assert "MLMANAGER_MAX_ZIP_UNCOMPRESSED_BYTES" in dataset.error
    assert not local_path(dataset.storage_dir).exists()


def test_too_many_images_fail_naming_the_setting(api, run_jobs, settings) -> None:
    settings.MLMANAGER_MAX_IMAGES = 3
    dataset = upload_and_process(api, run_jobs, zip_upload(two_classes(2)))
    assert dataset.status == Dataset.Status.FAILED
    assert "MLMANAGER_MAX_IMAGES" in dataset.error
    assert not local_path(dataset.storage_dir).exists()


def test_cancelled_processing_keeps_nothing(api, run_jobs, monkeypatch) -> None:
    from mlmanager.jobs.runner import JobContext

    monkeypatch.setattr(JobContext, "is_cancel_requested", lambda self: True)
    dataset = upload_and_process(api, run_jobs, zip_upload(two_classes(2)))
    assert dataset.status == Dataset.Status.FAILED
    assert Job.objects.get(pk=dataset.job_id).status == Job.Status.CANCELLED
    assert not local_path(dataset.storage_dir).exists()


def test_upload_of_a_renamed_non_zip_is_refused_at_once(api) -> None:
    upload = io.BytesIO(b"\x89PNG\r\n\x1a\n" + bytes(100))
    upload.name = "images.zip"
    response = api.post("/api/v1/datasets/", {"file": upload}, format="multipart")
    assert response.status_code == 400
    assert not Dataset.objects.exists()
