"""Image datasets through the API with the real worker: upload a zip → ready → the images
block → the gallery endpoints → confirm; table-only endpoints refuse cleanly."""

from __future__ import annotations

import io
from pathlib import Path

import openpyxl
import pytest
from PIL import Image

from mlmanager.datasets.files import local_path
from mlmanager.datasets.models import Dataset
from mlmanager.engine.tests.ingest.image_archives import (
    segmentation_entries,
    two_classes,
    zip_bytes,
)


def zip_upload(entries, name: str = "pets.zip") -> io.BytesIO:
    buffer = io.BytesIO(zip_bytes(entries))
    buffer.name = name
    return buffer


def upload_and_process(api, run_jobs, upload: io.BytesIO) -> Dataset:
    response = api.post("/api/v1/datasets/", {"file": upload}, format="multipart")
    assert response.status_code == 202, response.content
    assert response.json()["kind"] == "images"
    run_jobs()
    return Dataset.objects.get(pk=response.json()["id"])


def test_classification_zip_end_to_end(api, run_jobs) -> None:
    entries = [*two_classes(40), ("cat/bad.png", b"<svg/>")]
    dataset = upload_and_process(api, run_jobs, zip_upload(entries))
    assert dataset.status == Dataset.Status.READY, dataset.error
    assert (dataset.kind, dataset.source_name, dataset.row_count) == ("images", "source.zip", 80)
    assert sorted(p.name for p in local_path(dataset.storage_dir).iterdir()) == [
        "data.parquet",
        "source.zip",
    ]
    body = api.get(f"/api/v1/datasets/{dataset.pk}/").json()
    assert body["kind"] == "images"
    assert body["images"] == {
        "count": 80,
        "task": "classification",
        "layout": "folders",
        "classes": {"cat": 40, "dog": 40},
        "skipped": [{"file": "cat/bad.png", "reason": "unsupported type (SVG)"}],
        "skipped_count": 1,
        "notes": [],
        "confirmed": False,
    }
    assert body["columns"] == [
        {"name": "image", "type": "image"},
        {"name": "label", "type": "categorical"},
    ]
    listed = api.get("/api/v1/datasets/").json()["results"][0]
    assert (listed["kind"], listed["images"]["count"]) == ("images", 80)

    page = api.get(f"/api/v1/datasets/{dataset.pk}/images/?offset=60&limit=10&label=dog").json()
    assert (page["total"], page["offset"], page["limit"]) == (40, 60, 10)
    assert page["results"] == []
    page = api.get(f"/api/v1/datasets/{dataset.pk}/images/?offset=38&limit=4&label=dog").json()
    # By name, as text: dog/10.png comes before dog/2.png.
    assert [row["name"] for row in page["results"]] == ["dog/8.png", "dog/9.png"]
    first = page["results"][0]
    assert first["index"] == 78
    assert first["label"] == "dog" and first["mask_url"] is None
    assert first["thumbnail_url"].endswith(f"/api/v1/datasets/{dataset.pk}/images/78/thumbnail.png")

    response = api.get(first["image_url"])
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "private, max-age=86400"
    assert Image.open(io.BytesIO(response.content)).size == (24, 16)
    assert api.get(f"/api/v1/datasets/{dataset.pk}/images/78/mask.png").status_code == 404
    assert api.get(f"/api/v1/datasets/{dataset.pk}/images/80/image.png").status_code == 404
    assert api.get(f"/api/v1/datasets/{dataset.pk}/images/0/source.png").status_code == 404

    confirmed = api.post(f"/api/v1/datasets/{dataset.pk}/confirm/")
    assert confirmed.status_code == 200
    assert confirmed.json()["images"]["confirmed"] is True
    dataset.refresh_from_db()
    assert dataset.profile["images"]["confirmed"] is True


def test_segmentation_zip_has_masks(api, run_jobs) -> None:
    dataset = upload_and_process(api, run_jobs, zip_upload(segmentation_entries(3), "seg.zip"))
    assert dataset.status == Dataset.Status.READY, dataset.error
    body = api.get(f"/api/v1/datasets/{dataset.pk}/").json()
    assert body["images"]["task"] == "segmentation"
    assert body["images"]["mask_classes"] == ["background", "1"]
    assert body["columns"][1] == {"name": "mask", "type": "mask"}
    row = api.get(f"/api/v1/datasets/{dataset.pk}/images/").json()["results"][0]
    mask = api.get(row["mask_url"])
    assert mask.status_code == 200 and Image.open(io.BytesIO(mask.content)).mode == "L"


def test_table_only_endpoints_refuse_an_image_dataset(api, run_jobs) -> None:
    dataset = upload_and_process(api, run_jobs, zip_upload(two_classes(2)))
    preview = api.get(f"/api/v1/datasets/{dataset.pk}/preview/")
    assert preview.status_code == 409
    assert preview.json()["error"]["code"] == "not_a_table"
    patch = api.patch(
        f"/api/v1/datasets/{dataset.pk}/", {"column_types": {"label": "text"}}, format="json"
    )
    assert patch.status_code == 409
    assert patch.json()["error"]["code"] == "not_a_table"
    renamed = api.patch(f"/api/v1/datasets/{dataset.pk}/", {"name": "Pets"}, format="json")
    assert renamed.status_code == 200 and renamed.json()["name"] == "Pets"


def test_a_table_has_no_images(api, run_jobs) -> None:
    upload = io.BytesIO(b"a,b\n1,2\n3,4\n")
    upload.name = "t.csv"
    response = api.post("/api/v1/datasets/", {"file": upload}, format="multipart")
    assert response.json()["kind"] == "table" and response.json()["images"] is None
    run_jobs()
    dataset_id = response.json()["id"]
    for method, url in [
        ("get", f"/api/v1/datasets/{dataset_id}/images/"),
        ("get", f"/api/v1/datasets/{dataset_id}/images/0/image.png"),
        ("post", f"/api/v1/datasets/{dataset_id}/confirm/"),
    ]:
        answer = getattr(api, method)(url)
        assert answer.status_code == 409, url
        assert answer.json()["error"]["code"] == "not_images"


def test_workbook_named_zip_is_still_a_table(api, run_jobs, tmp_path) -> None:
    workbook = openpyxl.Workbook()
    workbook.active.append(["city", "temperature"])
    workbook.active.append(["Oslo", -3])
    workbook.save(tmp_path / "book.xlsx")
    upload = io.BytesIO((tmp_path / "book.xlsx").read_bytes())
    upload.name = "book.zip"
    response = api.post("/api/v1/datasets/", {"file": upload}, format="multipart")
    assert response.status_code == 202, response.content
    assert response.json()["kind"] == "table"
    run_jobs()
    dataset = Dataset.objects.get()
    assert dataset.status == Dataset.Status.READY, dataset.error
    assert dataset.row_count == 1


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"PK\x03\x04 broken", "invalid_zip"),
        (zip_bytes([(f"cat/{index}.png", b"") for index in range(1_100)]), "too_many_files"),
    ],
)
def test_refused_at_upload_keeps_nothing(api, settings, content, code) -> None:
    settings.MLMANAGER_MAX_IMAGES = 5
    upload = io.BytesIO(content)
    upload.name = "images.zip"
    response = api.post("/api/v1/datasets/", {"file": upload}, format="multipart")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert not Dataset.objects.exists()
    assert not Path(local_path("datasets")).exists() or not any(
        Path(local_path("datasets")).rglob("*.zip")
    )
