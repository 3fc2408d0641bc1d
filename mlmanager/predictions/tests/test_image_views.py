"""The pages of image predictions: the predict form of an image model (class, votes, agreement,
overlay; mask and areas), a prediction's page with its review form and PDF button, the log's
thumbnails, the batch form, and other teams kept out (issue 16)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from mlmanager.core.tests.factories import member
from mlmanager.predictions.models import Prediction
from mlmanager.predictions.tests.images_helpers import digit, shape

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(owner: Any) -> Client:
    client = Client()
    client.force_login(owner)
    return client


def predict_on_page(client: Client, machine: Any, content: bytes) -> tuple[str, Prediction]:
    response = client.post(
        f"/models/{machine.pk}/predict/",
        {"image": SimpleUploadedFile("scan.png", content, "image/png")},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    return response.content.decode(), Prediction.objects.get()


def test_an_image_model_predicts_from_a_dropped_image(browser: Client, digits_model: Any):
    page = browser.get(f"/models/{digits_model.pk}/predict/").content.decode()
    assert 'type="file"' in page and 'name="image"' in page and "Drop an image" in page
    html, prediction = predict_on_page(browser, digits_model, digit(0)[0])
    assert 'data-testid="prediction-result"' in html
    assert f'data-testid="predicted-label">{prediction.outputs["label"]["value"]}<' in html
    assert 'data-testid="votes"' in html and "member-0" in html
    assert 'data-testid="agreement"' in html
    assert f"/predictions/{prediction.pk}/overlay.png" in html
    assert prediction.source == "ui"
    # The overlay was made with the answer (saliency over the image), as a PNG of its size.
    overlay = browser.get(f"/predictions/{prediction.pk}/overlay.png")
    assert overlay.status_code == 200 and overlay["Content-Type"] == "image/png"
    image = Image.open(io.BytesIO(overlay.content))
    assert image.mode == "RGB" and image.size == (8, 8)


def test_a_segmentation_shows_the_mask_and_the_areas(browser: Client, shapes_model: Any):
    html, _prediction = predict_on_page(browser, shapes_model, shape(2))
    assert 'data-testid="areas"' in html and "circle" in html and "square" in html
    assert "The mask over the image" in html


def test_a_bad_image_is_an_error_on_the_form(browser: Client, digits_model: Any):
    response = browser.post(
        f"/models/{digits_model.pk}/predict/",
        {"image": SimpleUploadedFile("x.png", b"plain text", "image/png")},
    )
    assert response.status_code == 200
    assert 'data-testid="predict-error"' in response.content.decode()
    assert not Prediction.objects.exists()


def test_the_prediction_page_reviews_and_offers_the_report(
    browser: Client, digits_model: Any, owner: Any
):
    _html, prediction = predict_on_page(browser, digits_model, digit(0)[0])
    page = browser.get(f"/predictions/{prediction.pk}/").content.decode()
    assert 'data-testid="review-form"' in page and "Not reviewed yet." in page
    assert f"/predictions/{prediction.pk}/report.pdf" in page
    response = browser.post(
        f"/predictions/{prediction.pk}/review/",
        {"status": "corrected", "label": "7", "note": "A seven."},
        follow=True,
    )
    page = response.content.decode()
    assert 'data-testid="review-status">Corrected<' in page and "A seven." in page
    prediction.refresh_from_db()
    assert prediction.feedback == {"label": "7"} and prediction.reviewed_by == owner
    report = browser.get(f"/predictions/{prediction.pk}/report.pdf")
    assert report.status_code == 200 and report["Content-Type"] == "application/pdf"
    log = browser.get(f"/models/{digits_model.pk}/predictions/").content.decode()
    assert 'data-testid="log-row-image"' in log and 'data-testid="log-review-status"' in log


def test_viewers_see_no_review_form_and_cannot_post_one(digits_model: Any, owner: Any):
    viewer = Client()
    viewer.force_login(member("viewer", team=owner.current_team))
    editor = Client()
    editor.force_login(owner)
    _html, prediction = predict_on_page(editor, digits_model, digit(0)[0])
    page = viewer.get(f"/predictions/{prediction.pk}/").content.decode()
    assert 'data-testid="review-form"' not in page
    response = viewer.post(f"/predictions/{prediction.pk}/review/", {"status": "confirmed"})
    assert response.status_code == 403
    prediction.refresh_from_db()
    assert prediction.review_status == ""


def test_other_teams_get_not_found_for_every_page_and_file(browser: Client, digits_model: Any):
    _html, prediction = predict_on_page(browser, digits_model, digit(0)[0])
    stranger = Client()
    stranger.force_login(member("owner"))
    for suffix in ("", "image.png", "overlay.png", "report.pdf"):
        assert stranger.get(f"/predictions/{prediction.pk}/{suffix}").status_code == 404
    assert (
        stranger.post(f"/predictions/{prediction.pk}/review/", {"status": "confirmed"}).status_code
        == 404
    )


def test_the_batch_form_of_an_image_model_takes_a_zip(browser: Client, digits_model: Any):
    page = browser.get(f"/models/{digits_model.pk}/batches/").content.decode()
    assert "Zip of images" in page and 'name="pass_through"' not in page
