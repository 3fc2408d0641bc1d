from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from mlmanager.accounts.caller import Caller
from mlmanager.core.tests.factories import TeamFactory, api_client_for, member
from mlmanager.datasets.files import local_path
from mlmanager.datasets.models import Dataset
from mlmanager.datasets.tests.conftest import DEMO_COLUMNS, DEMO_CSV
from mlmanager.jobs.models import Job


def _media_files() -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_upload_profile_and_preview_demo(api, owner, upload, run_jobs) -> None:
    response = upload(DEMO_CSV, name="Churn")
    assert response.status_code == 202, response.json()
    body = response.json()
    assert (body["name"], body["status"], body["original_filename"]) == (
        "Churn",
        "processing",
        "customer_churn.csv",
    )
    assert Job.objects.get(pk=body["job"]).status == "queued"

    run_jobs()

    detail = api.get(f"/api/v1/datasets/{body['id']}/").json()
    assert detail["status"] == "ready", detail["error"]
    assert (detail["row_count"], detail["column_count"]) == (1000, 9)
    columns = {column["name"]: column for column in detail["columns"]}
    assert list(columns) == DEMO_COLUMNS
    assert (columns["customer_id"]["type"], columns["customer_id"]["role"]) == (
        "identifier",
        "ignore",
    )
    assert columns["plan"]["type"] == "categorical"
    assert columns["signup_date"]["type"] == "datetime"
    assert columns["monthly_fee"]["type"] == "numeric"
    assert columns["churned"]["type"] == "boolean"
    assert columns["churned"]["role"] == "output_candidate"
    assert columns["satisfaction"]["missing_count"] > 0
    assert Job.objects.get(pk=body["job"]).status == "succeeded"

    preview = api.get(f"/api/v1/datasets/{body['id']}/preview/?offset=998&limit=5").json()
    assert preview["total"] == 1000
    assert preview["columns"][0] == "customer_id"
    assert [row[0] for row in preview["rows"]] == ["C100998", "C100999"]


def test_rename_override_type_and_delete(api, owner, upload, run_jobs) -> None:
    dataset_id = upload(DEMO_CSV).json()["id"]
    run_jobs()
    renamed = api.patch(f"/api/v1/datasets/{dataset_id}/", {"name": "Renamed"}, format="json")
    assert renamed.json()["name"] == "Renamed"

    changed = api.patch(
        f"/api/v1/datasets/{dataset_id}/",
        {"column_types": {"support_calls": "categorical"}},
        format="json",
    )
    assert changed.status_code == 200
    assert changed.json()["status"] == "processing"
    run_jobs()
    column = next(
        c
        for c in api.get(f"/api/v1/datasets/{dataset_id}/").json()["columns"]
        if c["name"] == "support_calls"
    )
    assert (column["type"], column["detected_type"]) == ("categorical", "integer")
    assert column["stats"]["top_values"]

    run_jobs()
    bad = api.patch(
        f"/api/v1/datasets/{dataset_id}/",
        {"name": "Not kept", "column_types": {"nope": "text"}},
        format="json",
    )
    assert bad.status_code == 400
    assert "nope" in bad.json()["error"]["message"]
    # A refused request changes nothing, not even the part that was valid.
    assert Dataset.objects.get(pk=dataset_id).name == "Renamed"

    dataset = Dataset.objects.get(pk=dataset_id)
    assert local_path(dataset.parquet_path).exists()
    assert api.delete(f"/api/v1/datasets/{dataset_id}/").status_code == 204
    assert api.get(f"/api/v1/datasets/{dataset_id}/").status_code == 404
    assert not local_path(dataset.storage_dir).exists()


@pytest.mark.django_db
def test_upload_over_limit_is_413_and_keeps_nothing(api, settings, write_file, upload) -> None:
    settings.MLMANAGER_MAX_UPLOAD_BYTES = 100 * 1024
    big = write_file("big.csv", "a,b\n" + "1,2\n" * 100_000)
    response = upload(big)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "file_too_large"
    assert response.json()["error"]["details"] == {"max_bytes": 100 * 1024}
    assert not Dataset.objects.exists()
    assert _media_files() == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "content", "status", "code"),
    [
        ("empty.csv", b"", 400, "empty_file"),
        ("picture.csv", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40, 400, "binary_file"),
        ("program.exe", b"MZ\x90\x00", 415, "unsupported_format"),
        ("notes.pdf", b"%PDF-1.4", 415, "unsupported_format"),
    ],
)
def test_refused_at_once(upload, write_file, name, content, status, code) -> None:
    response = upload(write_file(name, content))
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert not Dataset.objects.exists()
    assert _media_files() == []


@pytest.mark.django_db
def test_missing_file_field(api) -> None:
    response = api.post("/api/v1/datasets/", {"name": "x"}, format="multipart")
    assert response.status_code == 400
    assert response.json()["error"]["details"]["file"]


@pytest.mark.django_db
def test_viewer_cannot_upload_or_delete(owner, write_file, upload) -> None:
    viewer = member("viewer", team=owner.current_team)
    response = upload(write_file("a.csv", "a,b\n1,2\n"), client=api_client_for(viewer))
    assert response.status_code == 403
    assert not Dataset.objects.exists()


@pytest.mark.django_db
def test_upload_into_chosen_team(api, owner, write_file, upload) -> None:
    from mlmanager.accounts.services import team_create

    second = team_create(caller=Caller.for_session(owner), name="Second")
    response = upload(write_file("a.csv", "a,b\n1,2\n"), team=second.pk)
    assert response.status_code == 202
    assert response.json()["team"] == second.pk
    assert api.get(f"/api/v1/datasets/?team={second.pk}").json()["count"] == 1
    other = TeamFactory()
    refused = upload(write_file("b.csv", "a,b\n1,2\n"), team=other.pk)
    assert refused.status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["offset=-1", "limit=0", "limit=501", "limit=abc"])
def test_preview_bad_paging(api, owner, query) -> None:
    dataset = Dataset.objects.create(
        team=owner.current_team, name="d", original_filename="d.csv", storage_dir="x/1"
    )
    response = api.get(f"/api/v1/datasets/{dataset.pk}/preview/?{query}")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


@pytest.mark.django_db
def test_preview_of_processing_dataset_conflicts(api, owner) -> None:
    dataset = Dataset.objects.create(
        team=owner.current_team, name="d", original_filename="d.csv", storage_dir="x/2"
    )
    response = api.get(f"/api/v1/datasets/{dataset.pk}/preview/")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "dataset_not_ready"
