"""Batch predictions of an image model: a zip of images in, a CSV (and for a segmentation a
zip of masks) out, through the same endpoint and the real worker (issue 16)."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import numpy as np
import pandas as pd
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from rest_framework.test import APIClient

from mlmanager.core.tests.factories import api_client_for, member
from mlmanager.predictions.models import Prediction
from mlmanager.predictions.tests.images_helpers import digit, png_bomb, shape, zip_of


def batches_url(machine: Any) -> str:
    return f"/api/v1/models/{machine.pk}/batch_predictions/"


def zip_upload(entries: dict[str, bytes], name: str = "images.zip") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, zip_of(entries), "application/zip")


def finished(api: APIClient, machine: Any, upload: SimpleUploadedFile, run_jobs: Any) -> dict:
    response = api.post(batches_url(machine), {"file": upload}, format="multipart")
    assert response.status_code == 202, response.content
    run_jobs()
    batch = api.get(f"/api/v1/batch_predictions/{response.json()['id']}/").json()
    assert batch["status"] == "succeeded", batch
    return batch


def fetched(api: APIClient, url: str) -> bytes:
    response = api.get(url)
    assert response.status_code == 200, response
    assert "attachment" in response["Content-Disposition"]
    return b"".join(response.streaming_content)


def test_a_zip_of_digits_is_predicted_into_a_csv(api: APIClient, digits_model: Any, run_jobs: Any):
    entries = {f"digits/{n}.png": digit(n)[0] for n in range(5)}
    entries["digits/notes.txt"] = b"not an image"
    entries["digits/bomb.png"] = png_bomb()
    entries["=cmd|calc.png"] = digit(7)[0]
    entries["__MACOSX/._0.png"] = b"resource fork"  # ignored silently
    batch = finished(api, digits_model, zip_upload(entries), run_jobs)
    assert batch["row_count"] == 8 and batch["masks_url"] is None
    result = pd.read_csv(io.BytesIO(fetched(api, batch["download_url"])), keep_default_na=False)
    classes = [str(n) for n in range(10)]
    assert list(result.columns) == [
        "name",
        "label",
        "confidence",
        "agreement",
        "needs_review",
        *[f"probability_{name}" for name in classes],
        "skipped",
    ]
    assert list(result["name"]) == [
        "'=cmd|calc.png",  # a formula, escaped
        "digits/0.png",
        "digits/1.png",
        "digits/2.png",
        "digits/3.png",
        "digits/4.png",
        "digits/bomb.png",
        "digits/notes.txt",
    ]
    answered = result[result["skipped"] == ""]
    assert len(answered) == 6
    assert set(answered["label"].astype(str)) <= set(classes)
    totals = answered[[f"probability_{name}" for name in classes]].astype(float).sum(axis=1)
    assert (totals - 1).abs().max() < 1e-3
    skipped = result.set_index("name").loc[["digits/bomb.png", "digits/notes.txt"], "skipped"]
    assert "pixels" in skipped["digits/bomb.png"] and "not an image" in skipped["digits/notes.txt"]
    assert not Prediction.objects.exists()  # a batch's answers are its CSV, not log entries


def test_a_zip_of_shapes_gives_areas_and_a_zip_of_masks(
    api: APIClient, shapes_model: Any, run_jobs: Any
):
    entries = {"images/a.png": shape(1), "images/a.jpg": shape(2), "b.png": shape(3)}
    batch = finished(api, shapes_model, zip_upload(entries), run_jobs)
    result = pd.read_csv(io.BytesIO(fetched(api, batch["download_url"])), keep_default_na=False)
    assert list(result.columns) == [
        "name",
        "confidence",
        "agreement",
        "needs_review",
        "area_background",
        "area_circle",
        "area_square",
        "mask",
        "skipped",
    ]
    assert list(result["mask"]) == ["b.png", "images/a.png", "images/a-2.png"]
    with zipfile.ZipFile(io.BytesIO(fetched(api, batch["masks_url"]))) as masks:
        assert sorted(masks.namelist()) == ["b.png", "images/a-2.png", "images/a.png"]
        mask = np.asarray(Image.open(io.BytesIO(masks.read("b.png"))))
    assert mask.shape == (24, 24) and set(np.unique(mask)) <= {0, 1, 2}


@pytest.mark.django_db
def test_what_is_not_a_zip_or_a_dataset_is_refused_at_once(api: APIClient, digits_model: Any):
    response = api.post(
        batches_url(digits_model),
        {"file": SimpleUploadedFile("rows.csv", b"a,b\n1,2\n", "text/csv")},
        format="multipart",
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "not_a_zip"
    response = api.post(
        batches_url(digits_model),
        {"file": zip_upload({"a.png": digit(0)[0]}), "format": "parquet"},
        format="multipart",
    )
    assert response.status_code == 400


def test_masks_of_another_team_are_not_found(api: APIClient, shapes_model: Any, run_jobs: Any):
    batch = finished(api, shapes_model, zip_upload({"a.png": shape(1)}), run_jobs)
    stranger = api_client_for(member("owner"))
    for url in (
        batch["masks_url"],
        batch["download_url"],
        f"/api/v1/batch_predictions/{batch['id']}/",
    ):
        assert stranger.get(url).status_code == 404
