"""POST /api/v1/models/{id}/predict/ for image models: classification and segmentation, the log
with its image, the stored files, and every bad input (issue 16)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from PIL import Image
from rest_framework.test import APIClient

from mlmanager.core import storage
from mlmanager.predictions.models import Prediction
from mlmanager.predictions.tests.images_helpers import (
    digit,
    jpeg_with_exif,
    png_bomb,
    shape,
)


def predict_url(machine: Any) -> str:
    return f"/api/v1/models/{machine.pk}/predict/"


def send(client: APIClient, machine: Any, *files: tuple[str, bytes]) -> Any:
    uploads = [io.BytesIO(content) for _name, content in files]
    for upload, (name, _content) in zip(uploads, files, strict=True):
        upload.name = name
    return client.post(predict_url(machine), {"image": uploads}, format="multipart")


def assert_error(response: Any, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] == code, error
    assert error["message"]
    return error


@pytest.mark.django_db
def test_digits_are_classified_with_votes_agreement_and_a_logged_image(
    api: APIClient, digits_model: Any
):
    first, first_label = digit(0)
    second, _ = digit(5)
    response = send(api, digits_model, ("zero.png", first), ("five.png", second))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["model"] == digits_model.pk and body["model_version"] == 1
    assert body["task"] == "classification"
    assert [p["name"] for p in body["predictions"]] == ["zero.png", "five.png"]
    classes = {str(n) for n in range(10)}
    for prediction in body["predictions"]:
        assert prediction["label"] in classes
        assert set(prediction["probabilities"]) == classes
        assert abs(sum(prediction["probabilities"].values()) - 1) < 1e-4
        assert prediction["confidence"] == prediction["probabilities"][prediction["label"]]
        assert prediction["votes"] and {"member", "label", "confidence"} <= set(
            prediction["votes"][0]
        )
        assert 0 <= prediction["agreement"] <= 1
        assert isinstance(prediction["needs_review"], bool)

    logged = Prediction.objects.get(pk=body["predictions"][0]["id"])
    assert logged.team_id == digits_model.team_id and logged.source == "api"
    assert logged.inputs == {
        "image": {"name": "zero.png", "width": 8, "height": 8, "channels": 1, "format": "PNG"}
    }
    answer = logged.outputs["label"]
    assert answer["value"] == body["predictions"][0]["label"]
    assert answer["votes"] == body["predictions"][0]["votes"]
    # The image kept is the PNG the platform wrote, under a folder named by the id.
    assert logged.image == f"{digits_model.storage_dir}/predictions/{logged.pk}/image.png"
    kept = Image.open(storage.local_path(logged.image))
    assert kept.format == "PNG" and kept.size == (8, 8)
    assert first_label in {str(n) for n in range(10)}


@pytest.mark.django_db
def test_metadata_is_stripped_from_the_kept_image(api: APIClient, digits_model: Any):
    response = send(api, digits_model, ("photo.jpg", jpeg_with_exif()))
    assert response.status_code == 200, response.content
    logged = Prediction.objects.get(pk=response.json()["predictions"][0]["id"])
    assert logged.inputs["image"]["format"] == "JPEG"
    content = storage.local_path(logged.image).read_bytes()
    assert b"secret description" not in content
    assert not Image.open(io.BytesIO(content)).getexif()


@pytest.mark.django_db
def test_shapes_are_segmented_with_areas_and_a_mask_url(api: APIClient, shapes_model: Any):
    response = send(api, shapes_model, ("shape.png", shape(3)))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["task"] == "segmentation"
    [prediction] = body["predictions"]
    assert set(prediction["areas"]) == {"background", "circle", "square"}
    assert abs(sum(prediction["areas"].values()) - 1) < 1e-3
    assert 0 <= prediction["confidence"] <= 1 and 0 <= prediction["agreement"] <= 1
    assert "label" not in prediction
    assert prediction["mask_url"] == (
        f"http://testserver/api/v1/predictions/{prediction['id']}/mask.png"
    )

    mask = api.get(prediction["mask_url"])
    assert mask.status_code == 200 and mask["Content-Type"] == "image/png"
    values = np.asarray(Image.open(io.BytesIO(mask.content)))
    assert values.shape == (24, 24) and set(np.unique(values)) <= {0, 1, 2}
    image = api.get(f"/api/v1/predictions/{prediction['id']}/image.png")
    assert image.status_code == 200 and Image.open(io.BytesIO(image.content)).size == (24, 24)
    logged = Prediction.objects.get(pk=prediction["id"])
    assert logged.outputs["mask"]["value"] is None
    assert logged.outputs["mask"]["areas"] == prediction["areas"]


@pytest.mark.django_db
def test_a_classification_has_no_mask(api: APIClient, digits_model: Any):
    prediction_id = send(api, digits_model, ("d.png", digit(1)[0])).json()["predictions"][0]["id"]
    assert_error(api.get(f"/api/v1/predictions/{prediction_id}/mask.png"), 404, "not_found")


@pytest.mark.django_db
def test_bad_images_are_refused_with_the_reason_and_nothing_is_kept(
    api: APIClient, digits_model: Any
):
    error = assert_error(
        send(api, digits_model, ("ok.png", digit(0)[0]), ("notes.png", b"just some text")),
        400,
        "invalid_image",
    )
    assert error["details"]["index"] == 1 and error["details"]["name"] == "notes.png"
    assert "not an image" in error["details"]["reason"]
    error = assert_error(send(api, digits_model, ("bomb.png", png_bomb())), 400, "invalid_image")
    assert "pixels" in error["details"]["reason"]
    truncated = digit(0)[0][:40]
    assert_error(send(api, digits_model, ("cut.png", truncated)), 400, "invalid_image")
    polyglot = b"GIF89a" + digit(0)[0]
    assert_error(send(api, digits_model, ("x.png", polyglot)), 400, "invalid_image")
    assert not Prediction.objects.exists()
    assert not storage.local_path(f"{digits_model.storage_dir}/predictions").exists()


@pytest.mark.django_db
def test_too_many_or_too_large_or_no_images(api: APIClient, digits_model: Any, settings: Any):
    settings.MLMANAGER_PREDICT_MAX_IMAGES = 3
    image = digit(0)[0]
    error = assert_error(
        send(api, digits_model, *[(f"{n}.png", image) for n in range(4)]), 400, "too_many_images"
    )
    assert error["details"] == {"max_images": 3, "sent": 4}
    settings.MLMANAGER_PREDICT_MAX_IMAGE_BYTES = 100
    assert_error(send(api, digits_model, ("big.png", image + b"\0" * 200)), 413, "image_too_large")
    response = api.post(predict_url(digits_model), {"other": "field"}, format="multipart")
    assert_error(response, 400, "no_image")


@pytest.mark.django_db
def test_rows_to_an_image_model_and_images_to_a_table_model_are_415(
    api: APIClient, digits_model: Any, binary_model: Any
):
    response = api.post(predict_url(digits_model), {"rows": [{"a": 1}]}, format="json")
    error = assert_error(response, 415, "unsupported_media_type")
    assert "image" in error["message"]
    error = assert_error(
        send(api, binary_model, ("d.png", digit(0)[0])), 415, "unsupported_media_type"
    )
    assert "rows" in error["message"]


@pytest.mark.django_db
def test_the_log_is_written_with_the_answer_or_the_files_go(
    api: APIClient, digits_model: Any, monkeypatch: pytest.MonkeyPatch
):
    """When the entries cannot be written, the images just stored are removed (no orphan
    files) and the request fails: an answer nobody can find again is not given."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database gone")

    monkeypatch.setattr(Prediction.objects, "bulk_create", refuse)
    client = api
    client.raise_request_exception = False
    response = send(client, digits_model, ("d.png", digit(0)[0]))
    assert response.status_code == 500
    folder = storage.local_path(f"{digits_model.storage_dir}/predictions")
    assert not folder.exists() or not any(path.is_file() for path in folder.rglob("*"))


@pytest.mark.django_db
def test_list_shows_the_image_url_and_review_fields(api: APIClient, digits_model: Any):
    prediction_id = send(api, digits_model, ("d.png", digit(0)[0])).json()["predictions"][0]["id"]
    [row] = api.get("/api/v1/predictions/").json()["results"]
    assert row["id"] == prediction_id
    assert row["image_url"].endswith(f"/api/v1/predictions/{prediction_id}/image.png")
    assert row["review_status"] == "" and row["reviewed_by"] is None
