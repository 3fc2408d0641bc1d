"""The prediction pages: the generated form, its answer and explanation, field errors, the log
with feedback, the feedback dataset, and batch predictions from the page."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from mlmanager.core.tests.factories import member
from mlmanager.datasets.models import Dataset
from mlmanager.predictions.models import BatchPrediction, Prediction
from mlmanager.predictions.tests.conftest import customers

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(owner: Any) -> Client:
    client = Client()
    client.force_login(owner)
    return client


def test_the_form_follows_the_input_schema(browser: Client, binary_model: Any):
    page = browser.get(f"/models/{binary_model.pk}/predict/").content.decode()
    # Numbers are text read with the user's decimal separator (test_input_warnings.py).
    assert 'name="monthly_fee"' in page and 'inputmode="decimal"' in page
    assert 'name="tenure_months"' in page
    assert '<select name="plan"' in page and '<option value="pro">' in page  # 3 categories
    assert '<select name="member"' in page  # yes / no / unknown
    assert 'type="date"' in page and 'name="signup"' in page  # dates only in the dataset
    assert "seen from" in page  # the training range as a hint


def test_a_prediction_shows_value_probabilities_and_what_moved_it(
    browser: Client, binary_model: Any, owner: Any
):
    response = browser.post(
        f"/models/{binary_model.pk}/predict/",
        {
            "plan": "pro",
            "monthly_fee": "49.5",
            "tenure_months": "2",
            "member": "true",
            "signup": "2023-04-01T10:00",
        },
        HTTP_HX_REQUEST="true",
    )
    page = response.content.decode()
    assert 'data-testid="prediction-result"' in page
    assert 'data-testid="probabilities"' in page and 'data-testid="explanation"' in page
    assert "tenure_months" in page.split('data-testid="explanation"')[1]
    logged = Prediction.objects.get()
    assert logged.source == "ui" and logged.user_id == owner.pk and logged.token_id is None
    assert logged.inputs["tenure_months"] == 2.0 and logged.inputs["member"] is True


def test_field_errors_are_shown_next_to_the_fields(browser: Client, binary_model: Any):
    response = browser.post(
        f"/models/{binary_model.pk}/predict/",
        {"monthly_fee": "cheap", "signup": "last spring"},
        HTTP_HX_REQUEST="true",
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="field-error-monthly_fee"' in page and "“cheap” is not a number" in page
    assert 'data-testid="field-error-signup"' in page
    assert 'data-testid="prediction-result"' not in page
    assert not Prediction.objects.exists()


def test_a_nul_character_is_a_field_error_and_predicts_nothing(browser: Client, binary_model: Any):
    response = browser.post(
        f"/models/{binary_model.pk}/predict/",
        {"monthly_fee": "4\x009", "signup": "2023-04-01T10:00\x00"},
        HTTP_HX_REQUEST="true",
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert page.count("Null characters are not allowed.") == 2
    assert 'data-testid="prediction-result"' not in page
    assert not Prediction.objects.exists()


def test_an_empty_form_predicts_from_nothing_known(browser: Client, binary_model: Any):
    page = browser.post(f"/models/{binary_model.pk}/predict/", {}).content.decode()
    assert 'data-testid="prediction-result"' in page
    assert "No input given changed this prediction." in page


def test_the_log_filters_takes_feedback_and_shows_live_accuracy(
    browser: Client, api: Any, binary_model: Any
):
    answers = api.post(
        f"/api/v1/models/{binary_model.pk}/predict/",
        {"rows": [{"tenure_months": 2}, {"tenure_months": 50}]},
        format="json",
    ).json()["predictions"]
    browser.post(f"/models/{binary_model.pk}/predict/", {"tenure_months": "5"})
    page = browser.get(f"/models/{binary_model.pk}/predictions/").content.decode()
    assert page.count('data-testid="log-row"') == 3
    page = browser.get(f"/models/{binary_model.pk}/predictions/?source=ui").content.decode()
    assert page.count('data-testid="log-row"') == 1
    row = browser.post(
        f"/predictions/{answers[0]['id']}/feedback/", {"actual": answers[0]["churned"]}
    ).content.decode()
    assert 'data-testid="feedback-value"' in row
    page = browser.get(f"/models/{binary_model.pk}/predictions/?has_feedback=true").content.decode()
    assert page.count('data-testid="log-row"') == 1
    assert 'data-testid="live-accuracy-value">100' in page
    model_page = browser.get(f"/models/{binary_model.pk}/").content.decode()
    assert (
        'data-testid="live-accuracy"' in model_page and 'data-testid="predict-link"' in model_page
    )


@pytest.mark.parametrize("version", ["²", "99999999999999999999", "0", "-1", "x"])
def test_a_version_filter_the_log_cannot_use_is_ignored(
    browser: Client, binary_model: Any, version: str
):
    response = browser.get(f"/models/{binary_model.pk}/predictions/", {"version": version})
    assert response.status_code == 200


def test_feedback_rows_become_a_new_dataset(
    browser: Client, api: Any, binary_model: Any, run_jobs: Any
):
    answers = api.post(
        f"/api/v1/models/{binary_model.pk}/predict/",
        {"rows": [{"plan": "pro", "tenure_months": 2, "signup": "2024-01-05"}, {"plan": "basic"}]},
        format="json",
    ).json()["predictions"]
    api.post(f"/api/v1/predictions/{answers[0]['id']}/feedback/", {"actual": "yes"}, format="json")
    response = browser.post(f"/models/{binary_model.pk}/predictions/feedback-dataset/")
    assert response.status_code == 302
    created = Dataset.objects.exclude(pk=binary_model.dataset_id).get()
    assert created.name == "Customers + 1 feedback rows"
    run_jobs()
    created.refresh_from_db()
    assert created.status == "ready", created.error
    assert created.row_count == 301
    preview_last = created.profile["row_count"]
    assert preview_last == 301


def test_feedback_dataset_without_feedback_says_so(browser: Client, binary_model: Any):
    response = browser.post(f"/models/{binary_model.pk}/predictions/feedback-dataset/", follow=True)
    assert "No prediction of this model has feedback yet." in response.content.decode()


def test_a_batch_from_the_page(browser: Client, binary_model: Any, run_jobs: Any):
    upload = SimpleUploadedFile(
        "rows.csv", customers(rows=50).to_csv(index=False).encode(), "text/csv"
    )
    response = browser.post(
        f"/models/{binary_model.pk}/batches/", {"file": upload, "format": "csv"}
    )
    assert response.status_code == 302
    run_jobs()
    page = browser.get(f"/models/{binary_model.pk}/batches/").content.decode()
    assert 'data-testid="batch-download"' in page
    batch = BatchPrediction.objects.get()
    download = browser.get(f"/batches/{batch.pk}/download/")
    assert download.status_code == 200
    assert b"predicted_churned" in b"".join(download.streaming_content)
    # Neither or both sources: the form says so.
    page = browser.post(f"/models/{binary_model.pk}/batches/", {"format": "csv"}).content.decode()
    assert "Upload a file or choose a dataset" in page


def test_a_batch_of_a_dataset_from_the_page_keeps_the_named_columns(
    browser: Client, binary_model: Any, run_jobs: Any
):
    url = f"/models/{binary_model.pk}/batches/"
    page = browser.get(url).content.decode()
    assert f'<option value="{binary_model.dataset_id}">Customers</option>' in page
    page = browser.post(
        url, {"dataset": binary_model.dataset_id, "format": "csv", "pass_through": "salary"}
    ).content.decode()
    assert "The dataset has no column “salary”." in page
    response = browser.post(
        url,
        {"dataset": binary_model.dataset_id, "format": "csv", "pass_through": "customer_id, spend"},
    )
    assert response.status_code == 302
    run_jobs()
    batch = BatchPrediction.objects.get()
    assert batch.pass_through == ["customer_id", "spend"]
    download = browser.get(f"/batches/{batch.pk}/download/")
    header = b"".join(download.streaming_content).split(b"\n", 1)[0].decode()
    assert header.split(",") == [
        '"customer_id"',
        '"plan"',
        '"monthly_fee"',
        '"tenure_months"',
        '"member"',
        '"signup"',
        '"spend"',
        '"predicted_churned"',
        '"probability_churned_no"',
        '"probability_churned_yes"',
    ]


def test_other_teams_pages_and_downloads_are_not_found(binary_model: Any):
    stranger = Client()
    stranger.force_login(member("owner"))
    for url in (
        f"/models/{binary_model.pk}/predict/",
        f"/models/{binary_model.pk}/predictions/",
        f"/models/{binary_model.pk}/batches/",
    ):
        assert stranger.get(url).status_code == 404, url


def test_a_viewer_can_predict_but_not_give_feedback(binary_model: Any, api: Any):
    viewer = Client()
    viewer.force_login(member("viewer", team=binary_model.team))
    assert viewer.post(f"/models/{binary_model.pk}/predict/", {"plan": "pro"}).status_code == 200
    [answer] = api.post(
        f"/api/v1/models/{binary_model.pk}/predict/", {"rows": [{}]}, format="json"
    ).json()["predictions"]
    assert (
        viewer.post(f"/predictions/{answer['id']}/feedback/", {"actual": "no"}).status_code == 403
    )
