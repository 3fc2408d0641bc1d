"""What reading a file did, on the dataset page and in its API (issue 12, item 3): the detected
delimiter, encoding and decimal separator, the missing-value tokens found, and a type override
to numeric that reads the file's decimal commas and counts the cells it cannot read."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.test import Client

from mlmanager.datasets.files import local_path
from mlmanager.datasets.models import Dataset

HEATING = ["Gas", "Electric", "None", "Oil", "Wood", "Heat pump"]
# Decimal commas with a token ("?"), an empty cell, "NA" and two cells that are not numbers:
# the column stays text when read. As numbers, 5 of its 12 cells are missing (41.7 %).
AMOUNTS = ["100,85", "2,5", "?", "n.b.", "3,25", "", "7,75", "<b>?</b>", "1,5", "NA", "4,0", "5,5"]


@pytest.fixture
def sales_csv(write_file):
    lines = ["id;amount;heating"]
    lines += [
        f"{index};{amount};{HEATING[index % len(HEATING)]}"
        for index, amount in enumerate(AMOUNTS, 1)
    ]
    return write_file("sales.csv", "\n".join(lines) + "\n")


@pytest.fixture
def browser(owner) -> Client:
    client = Client()
    client.force_login(owner)
    return client


def _columns(body: dict) -> dict[str, dict]:
    return {column["name"]: column for column in body["columns"]}


def test_reading_facts_in_the_api_and_on_the_page(api, browser, upload, sales_csv, run_jobs):
    dataset_id = upload(sales_csv).json()["id"]
    run_jobs()
    body = api.get(f"/api/v1/datasets/{dataset_id}/").json()
    assert body["status"] == "ready", body["error"]
    assert body["reading"] == {
        "source_format": "csv",
        "encoding": "utf-8",
        "delimiter": ";",
        "decimal_separator": ",",
        "thousands_separator": None,
        "missing_tokens": {"amount": {"": 1, "?": 1}},
        "conversions": [],
    }
    columns = _columns(body)
    assert columns["amount"]["missing_tokens"] == {"": 1, "?": 1}
    assert columns["amount"]["missing_count"] == 2
    # "None" among other words is a category, not a missing value.
    assert columns["heating"]["missing_count"] == 0

    page = browser.get(f"/datasets/{dataset_id}/").content.decode()
    assert "What was done while reading the file" in page
    assert "Delimiter: <code>;</code>" in page
    assert "Encoding: <code>utf-8</code>" in page
    assert "Decimal separator: <code>,</code>" in page
    assert "Taken as missing in “amount”:" in page
    assert "<code>?</code> × 1" in page


def test_numeric_override_reads_decimal_commas_and_shows_what_it_could_not_read(
    api, browser, upload, sales_csv, run_jobs
):
    dataset_id = upload(sales_csv).json()["id"]
    run_jobs()
    assert _columns(api.get(f"/api/v1/datasets/{dataset_id}/").json())["amount"]["type"] in {
        "categorical",
        "text",
    }

    api.patch(
        f"/api/v1/datasets/{dataset_id}/", {"column_types": {"amount": "numeric"}}, format="json"
    )
    run_jobs()
    body = api.get(f"/api/v1/datasets/{dataset_id}/").json()
    amount = _columns(body)["amount"]
    assert amount["type"] == "numeric"
    assert (amount["stats"]["count"], amount["stats"]["min"], amount["stats"]["max"]) == (
        7,
        1.5,
        100.85,
    )
    assert (amount["missing_count"], round(amount["missing_share"], 3)) == (5, 0.417)
    expected_conversion = {
        "column": "amount",
        "type": "numeric",
        "source": "override",
        "converted": 7,
        "missing_tokens": {"NA": 1},
        "unconverted": 2,
        "examples": ["n.b.", "<b>?</b>"],
    }
    assert amount["conversion"] == expected_conversion
    assert amount["missing_tokens"] == {"": 1, "?": 1, "NA": 1}
    assert body["reading"]["conversions"] == [expected_conversion]
    # Training reads the stored file: it holds the numbers, not text pandas cannot read.
    dataset = Dataset.objects.get(pk=dataset_id)
    stored = pq.read_table(local_path(dataset.parquet_path), columns=["amount"]).column(0)
    assert stored.type == pa.float64()
    assert stored.to_pylist()[:3] == [100.85, 2.5, None]

    page = browser.get(f"/datasets/{dataset_id}/").content.decode()
    warning = (
        "2 values could not be read as numbers and are missing now, e.g. "
        "'n.b.', '&lt;b&gt;?&lt;/b&gt;'"
    )
    assert page.count(warning) == 2  # in "what was done while reading" and in the column row
    assert "<b>?</b>" not in page
    assert "41.7" in page

    # Back to the detected type: the text is read again from the uploaded file.
    api.patch(f"/api/v1/datasets/{dataset_id}/", {"column_types": {"amount": ""}}, format="json")
    run_jobs()
    body = api.get(f"/api/v1/datasets/{dataset_id}/").json()
    assert body["status"] == "ready", body["error"]
    assert body["reading"]["conversions"] == []
    assert "conversion" not in _columns(body)["amount"]
    stored = pq.read_table(local_path(dataset.parquet_path), columns=["amount"]).column(0)
    assert stored.to_pylist()[:4] == ["100,85", "2,5", None, "n.b."]


def test_page_lists_the_tokens_of_twenty_columns_then_counts_the_rest(
    api, browser, upload, write_file, run_jobs
):
    names = [f"c{index}" for index in range(23)]
    rows = [",".join(names), ",".join(["1"] * 23), ",".join(["?"] * 23), ",".join(["2"] * 23)]
    dataset_id = upload(write_file("wide.csv", "\n".join(rows) + "\n")).json()["id"]
    run_jobs()
    reading = api.get(f"/api/v1/datasets/{dataset_id}/").json()["reading"]
    assert reading["missing_tokens"] == {name: {"?": 1} for name in names}
    page = browser.get(f"/datasets/{dataset_id}/").content.decode()
    assert page.count('data-testid="reading-missing"') == 20
    assert "Missing values in 3 more columns." in page
