"""JSON columns expanded at processing, the fuller profile, and the relations API and page."""

from __future__ import annotations

import csv
import io
import json

import pandas as pd
import pytest
from django.test import Client

from mlmanager.core.tests.factories import api_client_for, member
from mlmanager.datasets.models import Dataset
from mlmanager.machines.tests.conftest import churn_frame


def _price(index: int) -> int:
    return (index % 10) * 10 + index % 3 + (200 if index == 7 else 0)


def _csv(rows: int = 40) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "meta", "price"])
    for index in range(rows):
        price = _price(index)
        size = {"w": index, "h": price * 0.5 + (0.1 if index % 2 else 0.0)}
        meta = {"city": ["Paris", "Lyon"][index % 2], "size": size}
        if index % 3 == 0:
            meta["tags"] = ["a", str(index)]
        writer.writerow([f"C{index}", json.dumps(meta), price])
    return buffer.getvalue()


@pytest.fixture
def json_dataset(api, write_file, upload, run_jobs) -> dict:
    response = upload(write_file("shop.csv", _csv()))
    assert response.status_code == 202, response.json()
    run_jobs()
    return api.get(f"/api/v1/datasets/{response.json()['id']}/").json()


def test_json_column_is_expanded_into_typed_children(api, json_dataset) -> None:
    assert json_dataset["status"] == "ready", json_dataset["error"]
    columns = {column["name"]: column for column in json_dataset["columns"]}
    assert list(columns) == [
        "id",
        "meta",
        "meta.city",
        "meta.size.w",
        "meta.size.h",
        "meta.tags",
        "price",
    ]
    parent = columns["meta"]
    assert parent["expanded_into"] == ["meta.city", "meta.size.w", "meta.size.h", "meta.tags"]
    assert (parent["type"], parent["role"]) == ("json", "ignore")
    assert columns["meta.size.w"]["expanded_from"] == "meta"
    assert columns["meta.size.w"]["json_path"] == ["size", "w"]
    assert columns["meta.city"]["type"] == "categorical"
    assert columns["meta.size.w"]["type"] == "identifier"  # 0..39 counting up
    assert columns["meta.size.h"]["type"] == "numeric"
    assert columns["meta.tags"]["missing_count"] == 26
    assert json_dataset["column_count"] == 7
    preview = api.get(f"/api/v1/datasets/{json_dataset['id']}/preview/?limit=1").json()
    assert preview["rows"][0][2:6] == ["Paris", 0, 0.0, '["a", "0"]']
    assert columns["price"]["type"] == "integer"
    dataset = Dataset.objects.get(pk=json_dataset["id"])
    assert dataset.ingest_report["json_columns"][0]["object_count"] == 40


def test_numeric_columns_have_skew_kurtosis_and_outliers(json_dataset) -> None:
    price = next(c for c in json_dataset["columns"] if c["name"] == "price")["stats"]
    values = pd.Series([_price(index) for index in range(40)], dtype=float)
    assert (price["outlier_count"], price["outlier_share"]) == (1, 1 / 40)  # the 277
    assert price["skew"] == pytest.approx(values.skew(), rel=1e-9)
    assert price["kurtosis"] == pytest.approx(values.kurt(), rel=1e-9)


def test_children_are_accepted_as_inputs(api, json_dataset) -> None:
    response = api.post(
        "/api/v1/models/",
        {
            "dataset": json_dataset["id"],
            "inputs": ["meta.city", "meta.size.h"],
            "outputs": ["price"],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["inputs"] == ["meta.city", "meta.size.h"]


def test_relations_api_sorted_by_mutual_information(api, json_dataset) -> None:
    url = f"/api/v1/datasets/{json_dataset['id']}/relations/"
    response = api.get(url, {"output": "price"})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["output"], body["sampled_rows"]) == ("price", 40)
    by_name = {row["name"]: row for row in body["columns"]}
    assert set(by_name) == {"id", "meta", "meta.city", "meta.size.w", "meta.size.h", "meta.tags"}
    assert by_name["meta.size.h"]["method"] == "pearson"
    assert by_name["meta.size.h"]["correlation"] > 0.99
    assert by_name["meta.city"]["method"] == "correlation_ratio"
    assert by_name["meta"] == {
        "name": "meta",
        "correlation": None,
        "method": None,
        "mutual_information": None,
    }
    informations = [row["mutual_information"] for row in body["columns"]]
    known = [value for value in informations if value is not None]
    assert known == sorted(known, reverse=True)
    assert informations[len(known) :] == [None] * (len(informations) - len(known))
    # The same answer from the cache.
    assert api.get(url, {"output": "price"}).json() == body


@pytest.mark.parametrize("output", ["meta", "nope", ""])
def test_relations_refuse_columns_that_are_not_outputs(api, json_dataset, output) -> None:
    response = api.get(f"/api/v1/datasets/{json_dataset['id']}/relations/", {"output": output})
    assert response.status_code == 400
    if output:
        assert response.json()["error"]["code"] == "invalid_output"


@pytest.mark.django_db
def test_relations_with_a_category_output_on_a_stored_dataset(api, owner) -> None:
    from mlmanager.machines.tests.conftest import make_dataset as fixture

    dataset = fixture.__wrapped__()(owner, churn_frame(200))
    body = api.get(f"/api/v1/datasets/{dataset.pk}/relations/", {"output": "churned"}).json()
    first = body["columns"][0]
    assert first["name"] == "tenure_months"
    assert first["method"] == "correlation_ratio"


@pytest.mark.django_db
def test_relations_of_another_team_are_404_and_processing_is_409(api, owner) -> None:
    stranger = member("owner")
    theirs = Dataset.objects.create(
        team=stranger.current_team, name="B", original_filename="b.csv", storage_dir="b/1"
    )
    response = api.get(f"/api/v1/datasets/{theirs.pk}/relations/", {"output": "x"})
    assert response.status_code == 404
    mine = Dataset.objects.create(
        team=owner.current_team, name="A", original_filename="a.csv", storage_dir="a/1"
    )
    response = api.get(f"/api/v1/datasets/{mine.pk}/relations/", {"output": "x"})
    assert (response.status_code, response.json()["error"]["code"]) == (409, "dataset_not_ready")
    page = Client()
    page.force_login(owner)
    assert page.get(f"/datasets/{theirs.pk}/relations/").status_code == 404
    assert api_client_for(stranger).get(f"/api/v1/datasets/{mine.pk}/relations/").status_code == (
        404
    )


def test_dataset_page_shows_expansion_shape_and_relations(owner, json_dataset) -> None:
    page = Client()
    page.force_login(owner)
    html = page.get(f"/datasets/{json_dataset['id']}/").content.decode()
    assert 'data-testid="expanded-into"' in html
    assert "from JSON column “meta”" in html
    assert 'data-testid="shape-stats"' in html
    assert f'hx-get="/datasets/{json_dataset["id"]}/relations/"' in html
    partial = page.get(f"/datasets/{json_dataset['id']}/relations/").content.decode()
    assert '<option value="price"' in partial
    assert 'data-testid="relations-table"' not in partial
    chosen = page.get(f"/datasets/{json_dataset['id']}/relations/?output=price").content.decode()
    assert 'data-testid="relations-table"' in chosen
    assert "<td>meta.size.h</td>" in chosen
    refused = page.get(f"/datasets/{json_dataset['id']}/relations/?output=meta").content.decode()
    assert "Choose a column of numbers or categories" in refused
