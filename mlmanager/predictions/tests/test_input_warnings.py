"""Odd inputs (issue 12, item 4): numbers typed with the user's decimal separator, and
warnings — out of the training range, an unseen category, a fraction for a whole-number input —
next to the field in the form and in the predict API's answer; the prediction is still made."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from mlmanager.accounts.caller import Caller
from mlmanager.datasets.files import local_path
from mlmanager.engine.profiling import profile_parquet
from mlmanager.machines import services as machine_services
from mlmanager.machines.models import Machine
from mlmanager.machines.tests.conftest import fake_engine  # noqa: F401 - a fixture
from mlmanager.predictions import forms
from mlmanager.predictions.forms import PredictForm
from mlmanager.predictions.models import BatchPrediction, Prediction
from mlmanager.predictions.schema import (
    InputField,
    InputSchema,
    parse_number,
    recorded_inputs,
)
from mlmanager.predictions.tests.conftest import INPUTS, customers

pytestmark = pytest.mark.django_db

# What customers() holds: tenure_months 1..59 (whole numbers), plans basic, plus and pro.
TENURE_SEEN = (1, 59)


def record_training_facts(machine: Machine) -> None:
    """The active version's inputs as a version created today records them."""
    version = machine.active_version
    assert version is not None and machine.dataset is not None
    version.inputs = recorded_inputs(
        [(item["name"], item["type"]) for item in version.inputs],
        columns=machine.dataset.columns,
        parquet=local_path(machine.dataset.parquet_path),
    )
    version.save(update_fields=["inputs"])


@pytest.fixture
def model(binary_model: Machine) -> Machine:
    record_training_facts(binary_model)
    return binary_model


@pytest.fixture
def browser(owner: Any) -> Client:
    client = Client()
    client.force_login(owner)
    return client


def predict_page(browser: Client, machine: Machine, data: dict[str, str]) -> str:
    response = browser.post(f"/models/{machine.pk}/predict/", data, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    return response.content.decode()


def warning_of(page: str, field: str) -> str:
    marker = f'data-testid="field-warning-{field}">'
    assert marker in page, page
    return page.split(marker, 1)[1].split("</small>", 1)[0]


def input_tag(page: str, name: str) -> str:
    [tag] = re.findall(rf'<input[^>]*name="{name}"[^>]*>', page)
    return tag


def fee_range(machine: Machine) -> tuple[float, float]:
    assert machine.dataset is not None
    stats = next(c for c in machine.dataset.columns if c["name"] == "monthly_fee")["stats"]
    return stats["min"], stats["max"]


# --- numbers as people type them ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "separator", "number"),
    [
        ("49,5", ",", 49.5),
        ("49.5", ".", 49.5),
        ("1.234,5", ",", 1234.5),
        ("1,234.5", ".", 1234.5),
        ("1 234,5", ",", 1234.5),
        ("-3", ",", -3.0),
        ("1,5e3", ",", 1500.0),
        (" 7 ", ".", 7.0),
    ],
)
def test_numbers_are_read_with_the_decimal_separator(text: str, separator: str, number: float):
    assert parse_number(text, decimal_separator=separator) == number


@pytest.mark.parametrize(
    ("text", "separator"),
    [("49,5", "."), ("1,234", "."), ("1.234", ","), ("49.5", ","), ("1.2.3", "."), ("abc", ",")],
)
def test_ambiguous_or_invalid_numbers_are_refused(text: str, separator: str):
    with pytest.raises(ValueError, match=text):
        parse_number(text, decimal_separator=separator)


# --- the form ------------------------------------------------------------------------------------


def test_number_fields_are_text_with_a_decimal_keyboard_and_dates_get_a_date_picker(
    browser: Client, owner: Any, model: Machine
):
    owner.decimal_separator = ","
    owner.save(update_fields=["decimal_separator"])
    page = browser.get(f"/models/{model.pk}/predict/").content.decode()
    fee = input_tag(page, "monthly_fee")
    assert 'type="text"' in fee and 'inputmode="decimal"' in fee
    assert 'type="number"' not in page  # a browser would read "49,5" by its own locale
    low, high = fee_range(model)
    assert f"seen from {str(low).replace('.', ',')} to {str(high).replace('.', ',')}" in fee
    assert 'type="date"' in input_tag(page, "signup")  # the column holds dates only


def test_a_datetime_column_gets_a_date_and_time_picker():
    schema = InputSchema([InputField("at", "datetime")])
    profile = {"at": {"stats": {"min": "2024-01-01T00:00:00", "max": "2024-03-01T17:30:00"}}}
    html = str(PredictForm(schema=schema, columns=profile)["at"])
    assert 'type="datetime-local"' in html


def test_a_decimal_comma_number_is_read_as_the_user_means_it(
    browser: Client, owner: Any, model: Machine
):
    owner.decimal_separator = ","
    owner.save(update_fields=["decimal_separator"])
    page = predict_page(browser, model, {"monthly_fee": "49,5", "tenure_months": "12"})
    assert 'data-testid="prediction-result"' in page
    assert 'data-testid="field-error-monthly_fee"' not in page
    assert Prediction.objects.get().inputs["monthly_fee"] == 49.5


def test_with_a_decimal_point_a_comma_number_is_a_field_error_not_495(
    browser: Client, model: Machine
):
    page = predict_page(browser, model, {"monthly_fee": "49,5"})
    error = page.split('data-testid="field-error-monthly_fee">', 1)[1].split("</small>")[0]
    assert "49,5" in error and "decimal separator" in error
    assert 'data-testid="prediction-result"' not in page
    assert not Prediction.objects.exists()


def test_a_number_outside_the_training_range_is_predicted_with_a_warning(
    browser: Client, model: Machine
):
    page = predict_page(browser, model, {"tenure_months": "99"})
    assert 'data-testid="prediction-result"' in page  # extrapolating is the user's call
    assert warning_of(page, "tenure_months") == (
        "99 is outside the range seen in training (1 to 59); the prediction extrapolates."
    )
    assert Prediction.objects.count() == 1


def test_warnings_write_numbers_with_the_users_separator(
    browser: Client, owner: Any, model: Machine
):
    owner.decimal_separator = ","
    owner.save(update_fields=["decimal_separator"])
    page = predict_page(browser, model, {"monthly_fee": "500,5"})
    low, high = fee_range(model)
    assert warning_of(page, "monthly_fee").startswith(
        f"500,5 is outside the range seen in training ({str(low).replace('.', ',')} to "
        f"{str(high).replace('.', ',')})"
    )


def test_a_fraction_for_a_whole_number_input_is_predicted_with_a_warning(
    browser: Client, owner: Any, model: Machine
):
    owner.decimal_separator = ","
    owner.save(update_fields=["decimal_separator"])
    page = predict_page(browser, model, {"tenure_months": "3,7"})
    assert 'data-testid="prediction-result"' in page
    assert warning_of(page, "tenure_months") == (
        "3,7 is not a whole number, and this input held only whole numbers in training."
    )
    assert Prediction.objects.get().inputs["tenure_months"] == 3.7


def test_an_unseen_category_is_predicted_with_a_warning(
    browser: Client, model: Machine, monkeypatch: pytest.MonkeyPatch
):
    # More categories than a drop-down holds: a text field with suggestions takes any value.
    monkeypatch.setattr(forms, "SELECT_MAX_CHOICES", 2)
    page = predict_page(browser, model, {"plan": "gold", "tenure_months": "12"})
    assert 'data-testid="prediction-result"' in page
    assert warning_of(page, "plan") == (
        "“gold” was not seen in training; the model treats it as an unknown value."
    )
    assert 'data-testid="field-warning-tenure_months"' not in page
    assert Prediction.objects.get().inputs["plan"] == "gold"


# --- the API -------------------------------------------------------------------------------------


def predict(api: APIClient, machine: Machine, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post(f"/api/v1/models/{machine.pk}/predict/", body, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def codes(body: dict[str, Any]) -> list[tuple[int, str, str]]:
    return [(w["row"], w["field"], w["code"]) for w in body["warnings"]]


def test_the_api_answers_every_row_and_lists_warnings_by_row(api: APIClient, model: Machine):
    rows = [
        {"plan": "pro", "tenure_months": 12, "monthly_fee": 49.5},  # nothing odd
        {"tenure_months": 99},
        {"plan": "gold"},
        {"tenure_months": 3.7, "plan": " pro "},  # a padded known category is known
        {"tenure_months": 99.5, "monthly_fee": -1000},
    ]
    body = predict(api, model, {"rows": rows})
    assert len(body["predictions"]) == 5
    assert codes(body) == [
        (1, "tenure_months", "out_of_range"),
        (2, "plan", "unseen_category"),
        (3, "tenure_months", "not_integer"),
        (4, "monthly_fee", "out_of_range"),
        (4, "tenure_months", "out_of_range"),
        (4, "tenure_months", "not_integer"),
    ]
    assert body["warnings"][0]["message"] == (
        "99 is outside the range seen in training (1 to 59); the prediction extrapolates."
    )
    assert body["warnings"][1]["message"] == (
        "“gold” was not seen in training; the model treats it as an unknown value."
    )
    assert body["warnings"][2]["message"] == (
        "3.7 is not a whole number, and this input held only whole numbers in training."
    )
    assert Prediction.objects.count() == 5


def test_column_payloads_get_the_same_row_numbers(api: APIClient, model: Machine):
    body = predict(
        api, model, {"columns": {"tenure_months": [5, None, 0], "plan": ["basic", "gold", None]}}
    )
    assert codes(body) == [(1, "plan", "unseen_category"), (2, "tenure_months", "out_of_range")]


def test_ordinary_rows_have_an_empty_warning_list(api: APIClient, model: Machine):
    body = predict(api, model, {"rows": [{"plan": "basic", "tenure_months": 1}, {}]})
    assert body["warnings"] == []


def test_a_version_recorded_before_ranges_warns_only_of_what_its_types_say(
    api: APIClient, binary_model: Machine
):
    # binary_model's version records {name, type} only, as versions made before this did.
    body = predict(api, binary_model, {"rows": [{"tenure_months": 99.5, "plan": "gold"}]})
    assert codes(body) == [(0, "tenure_months", "not_integer")]


# --- what a version records ----------------------------------------------------------------------


@pytest.mark.usefixtures("fake_engine")
def test_training_records_ranges_and_categories_on_the_version(
    owner: Any, make_dataset: Any, run_jobs: Any
):
    dataset = make_dataset(owner, customers(), name="Customers")
    machine = machine_services.machine_create(
        caller=Caller.for_session(owner),
        dataset=dataset,
        outputs=["churned"],
        inputs=INPUTS,
        time_budget_s=10,
    )
    machine_services.training_start(caller=Caller.for_session(owner), machine=machine)
    run_jobs()
    machine.refresh_from_db()
    assert machine.active_version is not None
    recorded = {item["name"]: item for item in machine.active_version.inputs}
    assert recorded["tenure_months"] == {
        "name": "tenure_months",
        "type": "integer",
        "min": TENURE_SEEN[0],
        "max": TENURE_SEEN[1],
    }
    assert recorded["plan"] == {
        "name": "plan",
        "type": "categorical",
        "categories": ["basic", "plus", "pro"],
    }
    assert recorded["member"] == {"name": "member", "type": "boolean"}
    assert set(recorded["monthly_fee"]) == {"name", "type", "min", "max"}


def test_categories_past_the_profiles_top_ten_are_all_recorded(tmp_path: Any):
    path = tmp_path / "many.parquet"
    levels = [f"level {index}" for index in range(15)]
    pd.DataFrame({"kind": levels * 20}).to_parquet(path, index=False)
    profile = profile_parquet(path)
    assert profile["columns"][0]["type"] == "categorical"
    [record] = recorded_inputs([("kind", "categorical")], columns=profile["columns"], parquet=path)
    assert record["categories"] == sorted(levels)


# --- batches -------------------------------------------------------------------------------------


def test_a_batch_counts_its_warnings_by_code(api: APIClient, model: Machine, run_jobs: Any):
    rows = pd.DataFrame(
        {
            "plan": ["basic", "gold", "gold", "pro"],
            "tenure_months": [99, 3.5, 12, 5],
            "monthly_fee": [40.0, 45.5, None, 50.0],
        }
    )
    upload = SimpleUploadedFile("rows.csv", rows.to_csv(index=False).encode(), "text/csv")
    response = api.post(
        f"/api/v1/models/{model.pk}/batch_predictions/", {"file": upload}, format="multipart"
    )
    assert response.status_code == 202, response.content
    run_jobs()
    batch = api.get(f"/api/v1/batch_predictions/{response.json()['id']}/").json()
    assert batch["status"] == "succeeded" and batch["row_count"] == 4
    assert batch["warnings"] == {"out_of_range": 1, "unseen_category": 2, "not_integer": 1}
    log = BatchPrediction.objects.get().job.log
    assert (
        "Predicted all the same: 1 value outside the training range, 2 categories not seen in "
        "training, 1 fraction for a whole-number input." in log
    )
