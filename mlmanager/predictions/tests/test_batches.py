"""Batch predictions through the API and the real worker: upload or dataset in, a complete
result file out (CSV with formulas escaped, or Parquet), authorised like everything else."""

from __future__ import annotations

import io
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from mlmanager.core.tests.factories import api_client_for, member
from mlmanager.datasets.files import local_path
from mlmanager.predictions.models import BatchPrediction
from mlmanager.predictions.tests.conftest import customers


def batches_url(machine: Any) -> str:
    return f"/api/v1/models/{machine.pk}/batch_predictions/"


def csv_upload(frame: pd.DataFrame, name: str = "rows.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, frame.to_csv(index=False).encode(), "text/csv")


def download(api: APIClient, batch: dict) -> bytes:
    response = api.get(batch["download_url"])
    assert response.status_code == 200, response
    assert "attachment" in response["Content-Disposition"]
    return b"".join(response.streaming_content)


def test_an_uploaded_csv_is_predicted_into_a_csv_with_formulas_escaped(
    api: APIClient, binary_model: Any, run_jobs: Any
):
    rows = customers(rows=1200, seed=5).drop(columns=["churned", "spend"])
    rows["note"] = ['=HYPERLINK("http://evil")', "+1", "-cmd", "@SUM(A1)", "plain"] * 240
    rows.loc[3, "tenure_months"] = None  # a gap the model handles
    response = api.post(batches_url(binary_model), {"file": csv_upload(rows)}, format="multipart")
    assert response.status_code == 202, response.content
    batch = response.json()
    assert batch["status"] == "queued" and batch["download_url"] is None
    run_jobs()
    batch = api.get(f"/api/v1/batch_predictions/{batch['id']}/").json()
    assert batch["status"] == "succeeded", batch
    assert batch["row_count"] == 1200 and batch["progress"] == 100
    result = pd.read_csv(io.BytesIO(download(api, batch)), keep_default_na=False)
    assert len(result) == 1200
    assert list(result.columns[: len(rows.columns)]) == list(rows.columns)
    assert list(result.columns[len(rows.columns) :]) == [
        "predicted_churned",
        "probability_churned_no",
        "probability_churned_yes",
    ]
    assert set(result["predicted_churned"]) <= {"yes", "no"}
    total = result["probability_churned_no"] + result["probability_churned_yes"]
    assert (total - 1).abs().max() < 1e-6
    assert list(result["note"][:5]) == [
        '\'=HYPERLINK("http://evil")',
        "'+1",
        "'-cmd",
        "'@SUM(A1)",
        "plain",
    ]
    assert result["customer_id"].tolist() == rows["customer_id"].tolist()  # order kept
    # The upload and its Parquet copy are gone; only the result stays.
    folder = local_path(BatchPrediction.objects.get().storage_dir)
    assert sorted(path.name for path in folder.iterdir()) == ["predictions.csv"]


def test_a_dataset_is_predicted_into_parquet(
    api: APIClient, owner: Any, make_model: Any, trained_two_outputs: Any, run_jobs: Any
):
    machine = make_model(owner, trained_two_outputs)
    response = api.post(
        batches_url(machine),
        {"dataset": machine.dataset_id, "format": "parquet", "pass_through": ["customer_id"]},
        format="json",
    )
    assert response.status_code == 202, response.content
    assert response.json()["pass_through"] == ["customer_id"]
    run_jobs()
    batch = api.get(f"/api/v1/batch_predictions/{response.json()['id']}/").json()
    assert batch["status"] == "succeeded", batch
    table = pq.read_table(io.BytesIO(download(api, batch)))
    assert table.num_rows == 300
    # The named column and the model's inputs, in the dataset's order, then the predictions;
    # not the dataset's other columns (here the true "spend" and "churned").
    assert table.column_names == [
        "customer_id",
        "plan",
        "monthly_fee",
        "tenure_months",
        "member",
        "signup",
        "predicted_churned",
        "probability_churned_no",
        "probability_churned_yes",
        "predicted_spend",
    ]
    assert table.schema.field("predicted_spend").type == "double"
    listed = api.get(batches_url(machine)).json()
    assert [item["id"] for item in listed["results"]] == [batch["id"]]


def test_a_dataset_batch_copies_no_column_but_the_inputs_unless_named(
    api: APIClient, binary_model: Any, run_jobs: Any
):
    response = api.post(batches_url(binary_model), {"dataset": binary_model.dataset_id})
    assert response.status_code == 202, response.content
    assert response.json()["pass_through"] == []
    run_jobs()
    batch = api.get(f"/api/v1/batch_predictions/{response.json()['id']}/").json()
    result = pd.read_csv(io.BytesIO(download(api, batch)))
    assert list(result.columns) == [
        "plan",
        "monthly_fee",
        "tenure_months",
        "member",
        "signup",
        "predicted_churned",
        "probability_churned_no",
        "probability_churned_yes",
    ]
    assert len(result) == 300


@pytest.mark.django_db
def test_a_dataset_id_past_the_database_range_is_not_found(api: APIClient, binary_model: Any):
    response = api.post(batches_url(binary_model), {"dataset": 99999999999999999999}, format="json")
    assert response.status_code == 404, response.content
    assert response.json()["error"]["code"] == "not_found"
    assert not BatchPrediction.objects.exists()


@pytest.mark.django_db
def test_pass_through_names_columns_of_the_dataset_only(api: APIClient, binary_model: Any):
    response = api.post(
        batches_url(binary_model),
        {"dataset": binary_model.dataset_id, "pass_through": ["customer_id", "salary"]},
        format="json",
    )
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert (error["code"], error["details"]["pass_through"]) == ("unknown_column", ["salary"])
    assert "customer_id" in error["details"]["columns"]
    response = api.post(
        batches_url(binary_model),
        {"file": csv_upload(customers(rows=5)), "pass_through": ["customer_id"]},
        format="multipart",
    )
    assert response.status_code == 400, response.content
    assert "applies to a dataset" in response.json()["error"]["message"]
    assert not BatchPrediction.objects.exists()
    assert not local_path("batches").exists() or not any(local_path("batches").rglob("*.*"))


def test_a_file_that_cannot_be_read_fails_the_batch_in_words_and_keeps_no_file(
    api: APIClient, binary_model: Any, run_jobs: Any
):
    upload = SimpleUploadedFile("empty.csv", b"plan,monthly_fee\n", "text/csv")
    batch = api.post(batches_url(binary_model), {"file": upload}, format="multipart").json()
    run_jobs()
    batch = api.get(f"/api/v1/batch_predictions/{batch['id']}/").json()
    assert batch["status"] == "failed" and batch["download_url"] is None
    assert "no data rows" in batch["error"]
    assert not local_path(BatchPrediction.objects.get().storage_dir).exists()


@pytest.mark.django_db
def test_bad_batch_requests_are_refused_and_keep_nothing(
    api: APIClient, binary_model: Any, make_model: Any, trained_binary: Any
):
    both = api.post(
        batches_url(binary_model),
        {"file": csv_upload(customers(rows=5)), "dataset": binary_model.dataset_id},
        format="multipart",
    )
    assert both.status_code == 400 and both.json()["error"]["code"] == "invalid"
    assert api.post(batches_url(binary_model), {}, format="json").status_code == 400
    picture = SimpleUploadedFile("rows.csv", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40)
    response = api.post(batches_url(binary_model), {"file": picture}, format="multipart")
    assert response.status_code == 400 and response.json()["error"]["code"] == "binary_file"
    exe = SimpleUploadedFile("rows.exe", b"MZ", "application/octet-stream")
    assert api.post(batches_url(binary_model), {"file": exe}, format="multipart").status_code == 415
    bad_format = api.post(
        batches_url(binary_model),
        {"dataset": binary_model.dataset_id, "format": "xlsx"},
        format="json",
    )
    assert bad_format.status_code == 400
    outsider = member("owner")
    theirs = make_model(outsider, trained_binary, name="Theirs")
    # Someone else's model, or someone else's dataset: not found.
    assert (
        api.post(batches_url(theirs), {"dataset": theirs.dataset_id}, format="json").status_code
        == 404
    )
    assert (
        api.post(
            batches_url(binary_model), {"dataset": theirs.dataset_id}, format="json"
        ).status_code
        == 404
    )
    assert not BatchPrediction.objects.exists()
    assert not local_path("batches").exists() or not any(local_path("batches").rglob("*.*"))


@pytest.mark.django_db
def test_batches_and_downloads_are_scoped_to_the_team(
    api: APIClient, binary_model: Any, committing: Any
):
    with committing():
        batch = api.post(
            batches_url(binary_model), {"dataset": binary_model.dataset_id}, format="json"
        ).json()
    outsider = api_client_for(member("owner"))
    assert outsider.get(f"/api/v1/batch_predictions/{batch['id']}/").status_code == 404
    assert outsider.get(f"/api/v1/batch_predictions/{batch['id']}/download/").status_code == 404
    # Not finished yet: nothing to download, in the shared error shape.
    response = api.get(f"/api/v1/batch_predictions/{batch['id']}/download/")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    viewer = api_client_for(member("viewer", team=binary_model.team))
    response = viewer.post(
        batches_url(binary_model), {"dataset": binary_model.dataset_id}, format="json"
    )
    assert response.status_code == 403
