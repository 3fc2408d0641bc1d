"""GET /api/v1/predictions/{id}/report.pdf: the report rendered back to an image with
pypdfium2 and read (issue 16)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pypdfium2 as pdfium
import pytest
from rest_framework.test import APIClient

from mlmanager.core.tests.factories import api_client_for, member
from mlmanager.predictions.tests.images_helpers import digit, shape
from mlmanager.predictions.tests.test_image_review import predicted, review

# Where the report puts the image (reports.IMAGE_BOX_MM at the left margin, under the header),
# in points at 72 dpi: a region inside it, whatever the header's exact height.
IMAGE_REGION = (40, 140, 220, 300)  # left, top, right, bottom


def rendered(content: bytes) -> tuple[int, np.ndarray, str]:
    document = pdfium.PdfDocument(content)
    page = document[0]
    pixels = np.asarray(page.render(scale=1).to_pil().convert("L"))
    text = page.get_textpage().get_text_range()
    return len(document), pixels, text


@pytest.mark.django_db
def test_a_reviewed_classification_report(api: APIClient, owner: Any, digits_model: Any):
    answer = predicted(api, digits_model, digit(0)[0])
    review(api, answer["id"], {"status": "corrected", "label": "7", "note": "Écrit à la main"})
    response = api.get(f"/api/v1/predictions/{answer['id']}/report.pdf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == (
        f'attachment; filename="model-{digits_model.pk}-v1-prediction-{answer["id"]}.pdf"'
    )
    content = b"".join(response.streaming_content)
    pages, pixels, text = rendered(content)
    assert pages == 1
    left, top, right, bottom = IMAGE_REGION
    region = pixels[top:bottom, left:right]
    assert region.min() < 100 and region.std() > 20  # the image is drawn, not blank paper
    assert pixels[-60:, :].min() > 200  # the bottom of the page is empty
    assert f"Prediction: {answer['label']}" in text
    assert "Status: Corrected" in text and "True label: 7" in text
    assert owner.email in text and "Écrit à la main" in text
    assert digits_model.name in text and "version 1" in text
    assert "member-0" in text  # the votes


@pytest.mark.django_db
def test_a_segmentation_report_and_an_unreviewed_one(api: APIClient, shapes_model: Any):
    answer = predicted(api, shapes_model, shape(4))
    response = api.get(f"/api/v1/predictions/{answer['id']}/report.pdf")
    pages, _pixels, text = rendered(b"".join(response.streaming_content))
    assert pages == 1 and "Segmentation" in text and "Status: not reviewed yet" in text
    assert "circle" in text and "Mask over the image" in text


@pytest.mark.django_db
def test_reports_images_and_masks_of_other_teams_are_not_found(
    api: APIClient, digits_model: Any, shapes_model: Any
):
    classified = predicted(api, digits_model, digit(0)[0])
    segmented = predicted(api, shapes_model, shape(1))
    stranger = api_client_for(member("owner"))
    for prediction_id in (classified["id"], segmented["id"]):
        for suffix in ("report.pdf", "image.png", "mask.png"):
            response = stranger.get(f"/api/v1/predictions/{prediction_id}/{suffix}")
            assert response.status_code == 404, (suffix, response.content)
            assert response.json()["error"]["code"] == "not_found"
        assert stranger.get("/api/v1/predictions/").json()["count"] == 0
    # Made-up ids and a team token of another team: not found either.
    assert stranger.get("/api/v1/predictions/not-a-uuid/report.pdf").status_code == 404
