"""Rows appended to a dataset: a new version with lineage, checked against the parent's columns
and types before anything is written; the parent's models move to the version; feedback rows
appended the same way."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.conf import settings
from django.utils import timezone

from mlmanager.audit.models import AuditEvent
from mlmanager.core.tests.factories import api_client_for, member
from mlmanager.datasets import versions
from mlmanager.datasets.files import local_path
from mlmanager.datasets.models import Dataset, dataset_storage_dir
from mlmanager.datasets.services import dataset_mark_failed
from mlmanager.engine.profiling import profile_parquet
from mlmanager.machines.models import Machine, machine_storage_dir
from mlmanager.predictions.models import Prediction

ROW = {
    "customer_id": "C90001",
    "plan": "pro",
    "monthly_fee": 42.5,
    "tenure_months": 7,
    "notes": None,
    "spend": 297.5,
    "churned": True,
}


def frame(rows: int = 30) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [f"C{index:05d}" for index in range(rows)],
            "plan": [("basic", "plus", "pro")[index % 3] for index in range(rows)],
            "monthly_fee": [10.5 + index for index in range(rows)],
            "tenure_months": [1 + index % 12 for index in range(rows)],
            "notes": ["called once"] + [None] * (rows - 1),
            "spend": [100.25 * (index + 1) for index in range(rows)],
            "churned": [index % 2 == 0 for index in range(rows)],
        }
    )


def make_table(user: Any, data: pd.DataFrame | None = None, *, name: str = "Churn") -> Dataset:
    """A ready table dataset written as processing writes one (plain string columns)."""
    data = frame() if data is None else data
    dataset = Dataset(
        team=user.current_team,
        created_by=user,
        name=name,
        original_filename=f"{name}.csv",
        storage_dir=dataset_storage_dir(user.current_team_id),
        source_name="source.csv",
        status=Dataset.Status.READY,
    )
    path = local_path(dataset.parquet_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(data, preserve_index=False).replace_schema_metadata(None)
    plain = [
        field.with_type(pa.string()) if pa.types.is_large_string(field.type) else field
        for field in table.schema
    ]
    table = table.cast(pa.schema(plain))
    pq.write_table(table, path)
    dataset.profile = profile_parquet(path)
    dataset.row_count = dataset.profile["row_count"]
    dataset.column_count = dataset.profile["column_count"]
    dataset.save()
    return dataset


def make_machine(user: Any, dataset: Dataset, *, name: str = "Churn model") -> Machine:
    return Machine.objects.create(
        team=dataset.team,
        created_by=user,
        name=name,
        dataset=dataset,
        inputs=["plan", "monthly_fee", "tenure_months"],
        outputs=[{"name": "churned", "task": "binary", "metric": "roc_auc"}],
        level=1,
        time_budget_s=60,
        storage_dir=machine_storage_dir(dataset.team_id),
    )


def media_files() -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.fixture
def table(owner: Any) -> Dataset:
    return make_table(owner)


def post_rows(api: Any, dataset: Dataset, rows: Any) -> Any:
    return api.post(f"/api/v1/datasets/{dataset.pk}/rows/", {"rows": rows}, format="json")


def post_file(api: Any, dataset: Dataset, path: Path) -> Any:
    with path.open("rb") as handle:
        return api.post(
            f"/api/v1/datasets/{dataset.pk}/rows/", {"file": handle}, format="multipart"
        )


# --- appends that make a version ------------------------------------------------------------


def test_json_rows_make_a_processed_version_and_move_the_models(
    api: Any, owner: Any, run_jobs: Callable[[], None]
) -> None:
    parent = make_table(owner)
    machine = make_machine(owner, parent)
    parent_bytes = local_path(parent.parquet_path).read_bytes()
    second = {**ROW, "customer_id": "C90002", "churned": "no", "monthly_fee": "12.75"}

    response = post_rows(api, parent, [ROW, second])

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["name"], body["parent"], body["version"], body["rows_added"], body["status"]) == (
        "Churn",
        parent.pk,
        2,
        2,
        "processing",
    )
    machine.refresh_from_db()
    assert machine.dataset_id == body["id"]
    assert local_path(parent.parquet_path).read_bytes() == parent_bytes  # never modified

    run_jobs()

    version = Dataset.objects.get(pk=body["id"])
    assert (version.status, version.row_count, version.error) == ("ready", 32, "")
    assert version.lineage == parent.pk
    assert version.rows_origin == {"source": "api"}
    preview = api.get(f"/api/v1/datasets/{version.pk}/preview/?offset=29&limit=5").json()
    assert preview["rows"] == [
        ["C00029", "pro", 39.5, 6, None, 3007.5, False],
        ["C90001", "pro", 42.5, 7, None, 297.5, True],
        ["C90002", "pro", 12.75, 7, None, 297.5, False],
    ]
    parent.refresh_from_db()
    assert (parent.row_count, parent.status, parent.version) == (30, "ready", 1)

    events = AuditEvent.objects.filter(team=parent.team).order_by("pk")
    assert [(event.action, event.target_id) for event in events] == [
        ("model.dataset_changed", machine.pk),
        ("dataset.version_created", version.pk),
    ]
    assert events[0].changes == {"dataset": {"before": parent.pk, "after": version.pk}}
    assert events[1].details == {
        "parent": parent.pk,
        "version": 2,
        "rows_added": 2,
        "origin": {"source": "api"},
        "models_moved": [machine.pk],
    }


def test_file_rows_make_a_version_and_lineage_lists_the_family(
    api: Any, owner: Any, write_file: Callable[..., Path], run_jobs: Callable[[], None]
) -> None:
    parent = make_table(owner)
    csv = write_file(
        "more.csv",
        "customer_id,plan,monthly_fee,tenure_months,notes,spend,churned\n"
        "C80001,basic,11.5,3,,34.5,false\n"
        "C80002,plus,20,4,late,80,true\n",
    )

    response = post_file(api, parent, csv)

    assert response.status_code == 201, response.json()
    second = response.json()
    run_jobs()
    third = post_rows(api, Dataset.objects.get(pk=second["id"]), [ROW]).json()
    run_jobs()

    assert Dataset.objects.get(pk=second["id"]).row_count == 32
    assert Dataset.objects.get(pk=second["id"]).rows_origin == {
        "source": "file",
        "filename": "more.csv",
    }
    assert Dataset.objects.get(pk=third["id"]).row_count == 33
    listed = api.get(f"/api/v1/datasets/{parent.pk}/versions/").json()
    assert [
        (item["id"], item["version"], item["parent"], item["rows_added"], item["created_by"])
        for item in listed["results"]
    ] == [
        (parent.pk, 1, None, None, owner.email),
        (second["id"], 2, parent.pk, 2, owner.email),
        (third["id"], 3, second["id"], 1, owner.email),
    ]
    assert listed["count"] == 3
    # The same family seen from any of its versions.
    assert api.get(f"/api/v1/datasets/{third['id']}/versions/").json()["count"] == 3


def test_a_version_whose_processing_fails_gives_its_models_back(api: Any, owner: Any) -> None:
    parent = make_table(owner)
    machine = make_machine(owner, parent)
    version_id = post_rows(api, parent, [ROW]).json()["id"]
    assert Machine.objects.get(pk=machine.pk).dataset_id == version_id

    dataset_mark_failed(dataset_id=version_id, error="The worker stopped.")

    assert Machine.objects.get(pk=machine.pk).dataset_id == parent.pk
    assert Dataset.objects.get(pk=version_id).status == "failed"


# --- refusals: nothing written ----------------------------------------------------------------


def _nothing_written(before: tuple[int, list[Path], int]) -> None:
    assert (Dataset.objects.count(), media_files(), AuditEvent.objects.count()) == before


def _state() -> tuple[int, list[Path], int]:
    return Dataset.objects.count(), media_files(), AuditEvent.objects.count()


def test_missing_and_unknown_columns(api: Any, table: Dataset) -> None:
    before = _state()
    row = {key: value for key, value in ROW.items() if key != "churned"}

    response = post_rows(api, table, [{**row, "colour": "red"}])

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "incompatible_rows"
    assert response.json()["error"]["message"] == (
        "The rows do not fit the dataset: missing columns: churned; unknown columns: colour."
    )
    assert response.json()["error"]["details"] == {
        "missing_columns": ["churned"],
        "unknown_columns": ["colour"],
        "mistyped": {},
    }
    _nothing_written(before)


def test_values_that_do_not_fit_their_columns(api: Any, table: Dataset) -> None:
    before = _state()
    rows = [
        ROW,
        {**ROW, "tenure_months": "many", "monthly_fee": "abc"},
        {**ROW, "tenure_months": 3.5, "churned": "maybe"},
        {**ROW, "plan": {"nested": 1}, "churned": None, "monthly_fee": True},
    ]

    response = post_rows(api, table, rows)

    assert response.status_code == 400
    body = response.json()["error"]
    assert body["code"] == "incompatible_rows"
    assert body["message"] == (
        "The rows do not fit the dataset: "
        "“plan” needs a single value (1 value does not fit, row 4); "
        "“monthly_fee” needs a number (2 values do not fit, rows 2, 4); "
        "“tenure_months” needs a whole number (2 values do not fit, rows 2, 3); "
        "“churned” needs true or false (1 value does not fit, row 3)."
    )
    assert body["details"]["missing_columns"] == []
    assert body["details"]["unknown_columns"] == []
    assert body["details"]["mistyped"] == {
        "plan": {
            "type": "categorical",
            "expected": "a single value",
            "count": 1,
            "examples": [{"row": 4, "value": '{"nested": 1}'}],
        },
        "monthly_fee": {
            "type": "numeric",
            "expected": "a number",
            "count": 2,
            "examples": [{"row": 2, "value": "abc"}, {"row": 4, "value": True}],
        },
        "tenure_months": {
            "type": "integer",
            "expected": "a whole number",
            "count": 2,
            "examples": [{"row": 2, "value": "many"}, {"row": 3, "value": 3.5}],
        },
        "churned": {
            "type": "boolean",
            "expected": "true or false",
            "count": 1,
            "examples": [{"row": 3, "value": "maybe"}],
        },
    }
    _nothing_written(before)


def test_a_file_of_other_columns_is_refused_with_nothing_kept(
    api: Any, table: Dataset, write_file: Callable[..., Path]
) -> None:
    before = _state()
    csv = write_file("other.csv", "a,b\n1,2\n")

    response = post_file(api, table, csv)

    assert response.status_code == 400
    assert response.json()["error"]["details"]["unknown_columns"] == ["a", "b"]
    assert len(response.json()["error"]["details"]["missing_columns"]) == 7
    _nothing_written(before)


@pytest.mark.parametrize(
    ("name", "content", "status", "code"),
    [
        ("rows.exe", b"MZ\x90\x00", 415, "unsupported_format"),
        ("rows.csv", b"", 400, "empty_file"),
    ],
)
def test_upload_checks_of_a_dataset_apply(
    api: Any,
    table: Dataset,
    write_file: Callable[..., Path],
    name: str,
    content: bytes,
    status: int,
    code: str,
) -> None:
    before = _state()
    response = post_file(api, table, write_file(name, content))
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    _nothing_written(before)


def test_row_limits(api: Any, table: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    before = _state()
    monkeypatch.setattr(versions, "APPEND_MAX_ROWS", 2)
    response = post_rows(api, table, [ROW, ROW, ROW])
    assert (
        response.status_code,
        response.json()["error"]["code"],
        response.json()["error"]["message"],
    ) == (
        400,
        "too_many_rows",
        "At most 2 rows can be appended at once.",
    )
    monkeypatch.setattr(versions, "APPEND_MAX_ROWS", 100)
    with monkeypatch.context() as patched:
        patched.setattr(settings, "MLMANAGER_MAX_ROWS", 31)
        response = post_rows(api, table, [ROW, ROW])
    assert (response.status_code, response.json()["error"]["message"]) == (
        400,
        "With these rows the dataset would pass the limit of 31 rows.",
    )
    response = post_rows(api, table, [])
    assert (response.status_code, response.json()["error"]["code"]) == (400, "no_rows")
    response = api.post(f"/api/v1/datasets/{table.pk}/rows/", {}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid")
    _nothing_written(before)


def test_only_ready_tables(api: Any, owner: Any, table: Dataset) -> None:
    Dataset.objects.filter(pk=table.pk).update(status=Dataset.Status.PROCESSING)
    response = post_rows(api, table, [ROW])
    assert (response.status_code, response.json()["error"]["code"]) == (409, "dataset_not_ready")
    images = Dataset.objects.create(
        team=owner.current_team,
        name="Pictures",
        kind=Dataset.Kind.IMAGES,
        original_filename="pictures.zip",
        storage_dir=dataset_storage_dir(owner.current_team_id),
        status=Dataset.Status.READY,
    )
    response = post_rows(api, images, [ROW])
    assert (response.status_code, response.json()["error"]["code"]) == (409, "not_a_table")


def test_another_teams_dataset_is_not_found(table: Dataset) -> None:
    stranger = api_client_for(member())
    before = _state()
    response = post_rows(stranger, table, [ROW])
    assert response.status_code == 404
    assert stranger.get(f"/api/v1/datasets/{table.pk}/versions/").status_code == 404
    _nothing_written(before)


def test_a_viewer_cannot_append(table: Dataset, owner: Any) -> None:
    viewer = member("viewer", team=owner.current_team)
    response = post_rows(api_client_for(viewer), table, [ROW])
    assert response.status_code == 403


# --- feedback rows -----------------------------------------------------------------------------


def _prediction(machine: Machine, inputs: dict[str, Any], actual: Any, at: Any) -> Prediction:
    return Prediction.objects.create(
        team=machine.team,
        machine=machine,
        version_number=1,
        source=Prediction.Source.API,
        inputs=inputs,
        outputs={"churned": {"value": True, "probabilities": {"False": 0.4, "True": 0.6}}},
        latency_ms=1.0,
        feedback=None if actual is None else {"churned": actual},
        feedback_at=None if actual is None else at,
    )


def test_feedback_rows_are_appended_once(
    api: Any, owner: Any, run_jobs: Callable[[], None]
) -> None:
    parent = make_table(owner)
    machine = make_machine(owner, parent)
    inputs = {"plan": "basic", "monthly_fee": 15.0, "tenure_months": 2}
    earlier = timezone.now() - timezone.timedelta(minutes=5)
    _prediction(machine, inputs, False, earlier)
    _prediction(machine, {**inputs, "plan": "pro"}, True, earlier + timezone.timedelta(seconds=1))
    _prediction(machine, inputs, None, None)  # no feedback: not appended

    response = api.post(f"/api/v1/models/{machine.pk}/feedback/append/")

    assert response.status_code == 201, response.json()
    first = response.json()
    assert (first["parent"], first["version"], first["rows_added"]) == (parent.pk, 2, 2)
    assert Machine.objects.get(pk=machine.pk).dataset_id == first["id"]
    run_jobs()
    version = Dataset.objects.get(pk=first["id"])
    assert (version.status, version.row_count) == ("ready", 32)
    assert version.rows_origin["source"] == "feedback"
    assert version.rows_origin["machine"] == machine.pk
    tail = api.get(f"/api/v1/datasets/{version.pk}/preview/?offset=30&limit=5").json()["rows"]
    assert tail == [
        [None, "basic", 15.0, 2, None, None, False],
        [None, "pro", 15.0, 2, None, None, True],
    ]

    again = api.post(f"/api/v1/models/{machine.pk}/feedback/append/")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "no_feedback")

    _prediction(machine, {**inputs, "plan": "plus"}, True, timezone.now())
    third = api.post(f"/api/v1/models/{machine.pk}/feedback/append/").json()
    assert (third["parent"], third["version"], third["rows_added"]) == (version.pk, 3, 1)


def test_feedback_append_of_another_teams_model_is_not_found(owner: Any) -> None:
    machine = make_machine(owner, make_table(owner))
    stranger = api_client_for(member())
    assert stranger.post(f"/api/v1/models/{machine.pk}/feedback/append/").status_code == 404


# --- pages -----------------------------------------------------------------------------------


def test_page_lists_versions_and_appends_a_file(
    client: Any, owner: Any, write_file: Callable[..., Path]
) -> None:
    parent = make_table(owner)
    client.force_login(owner)
    page = client.get(f"/datasets/{parent.pk}/versions/")
    assert page.status_code == 200
    assert b'data-testid="append-rows-form"' in page.content

    csv = write_file(
        "more.csv",
        "customer_id,plan,monthly_fee,tenure_months,notes,spend,churned\n"
        "C80001,basic,11.5,3,,34.5,false\n",
    )
    with csv.open("rb") as handle:
        response = client.post(f"/datasets/{parent.pk}/append-rows/", {"file": handle})
    version = Dataset.objects.get(parent=parent)
    assert response.status_code == 302
    assert response["Location"] == f"/datasets/{version.pk}/"
    lineage = client.get(f"/datasets/{version.pk}/versions/").content.decode()
    assert "This is version 2." in lineage
    assert "1 row added to" in lineage
    assert owner.email in lineage

    bad = write_file("bad.csv", "a\n1\n")
    with bad.open("rb") as handle:
        refused = client.post(f"/datasets/{parent.pk}/append-rows/", {"file": handle}, follow=True)
    assert "The rows do not fit the dataset" in refused.content.decode()
    assert Dataset.objects.filter(parent=parent).count() == 1
