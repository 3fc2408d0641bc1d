"""Parquet input, end to end through convert_to_parquet."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pyarrow as pa
import pytest

from mlmanager.engine.tests.ingest.uploads import convert_upload, parquet_bytes, refused_upload


def test_parquet_is_copied_with_normalised_columns(tmp_path: Path) -> None:
    table = pa.Table.from_arrays(
        [
            pa.array([1, 2, 3]),
            pa.array(["x", "y", "x"]).dictionary_encode(),
            pa.array([{"k": 1, "j": "a"}, None, {"k": 2, "j": "b"}]),
            pa.array([[1, 2], [], None]),
            pa.array(["a", "b", "c"], pa.large_string()),
            pa.array([dt.datetime(2020, 1, 1), None, dt.datetime(2021, 5, 6, 7, 8, 9)]),
        ],
        names=["id", "id", "", "tags", "big", "when"],
    )
    report, result = convert_upload(tmp_path, "in.parquet", parquet_bytes(table))
    assert report.source_format == "parquet"
    assert (report.encoding, report.delimiter) == (None, None)
    assert result.column_names == ["id", "id_2", "column_3", "tags", "big", "when"]
    assert {field.name: str(field.type) for field in result.schema} == {
        "id": "int64",
        "id_2": "string",
        "column_3": "string",
        "tags": "string",
        "big": "string",
        "when": "timestamp[us]",
    }
    assert result.column("column_3").to_pylist() == [
        '{"j": "a", "k": 1}',
        None,
        '{"j": "b", "k": 2}',
    ]
    assert result.column("tags").to_pylist() == ["[1, 2]", "[]", None]
    assert report.renamed_columns == {"id": "id_2", "": "column_3"}
    assert report.notes == ["Renamed 2 duplicate or empty column names."]


def test_parquet_renamed_to_csv_is_detected_by_content(tmp_path: Path) -> None:
    content = parquet_bytes(pa.table({"a": [1, 2]}))
    report, table = convert_upload(tmp_path, "really-parquet.csv", content)
    assert report.source_format == "parquet"
    assert table.to_pydict() == {"a": [1, 2]}


@pytest.mark.parametrize(
    "content",
    [
        parquet_bytes(pa.table({"a": list(range(1000))}))[:-100],  # truncated upload
        parquet_bytes(pa.table({"a": list(range(1000))}))[:100],
        b"PAR1 this is not really parquet PAR1",
        b"a,b\n1,2\n",  # text with a .parquet name
    ],
    ids=["truncated-footer", "truncated-start", "fake-magic", "text"],
)
def test_corrupt_parquet_is_refused(tmp_path: Path, content: bytes) -> None:
    assert refused_upload(tmp_path, "broken.parquet", content).code == "corrupt_parquet"


def test_corrupt_parquet_pages_are_refused(tmp_path: Path) -> None:
    content = bytearray(
        parquet_bytes(
            pa.table({"a": [f"value {i}" for i in range(5000)]}),
            compression="snappy",
            use_dictionary=False,
        )
    )
    content[200:3000] = random.Random(1).randbytes(2800)  # data pages; the footer stays intact
    assert refused_upload(tmp_path, "broken.parquet", bytes(content)).code == "corrupt_parquet"


def test_parquet_without_rows_is_refused(tmp_path: Path) -> None:
    content = parquet_bytes(pa.table({"a": pa.array([], pa.int64())}))
    assert refused_upload(tmp_path, "none.parquet", content).code == "no_rows"


def test_parquet_with_too_many_columns_is_refused(tmp_path: Path) -> None:
    content = parquet_bytes(pa.table({f"c{i}": [i] for i in range(5)}))
    assert refused_upload(tmp_path, "w.parquet", content, max_columns=4).code == "too_many_columns"
