"""JSON Lines input, end to end through convert_to_parquet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlmanager.engine.ingest import python_values, writer
from mlmanager.engine.tests.ingest.uploads import convert_upload, refused_upload


def test_jsonl_rows_with_nested_values(tmp_path: Path) -> None:
    lines = [
        {"id": 1, "meta": {"b": 2, "a": [1, 2]}, "tags": ["x"], "ok": True, "score": 1},
        {"id": 2, "meta": {"a": None}, "tags": [], "ok": False, "score": 2.5, "new": "late"},
        {"id": 3, "meta": None, "ok": None, "score": None},
    ]
    content = ("\n".join(json.dumps(line) for line in lines) + "\n\n").encode()
    report, table = convert_upload(tmp_path, "rows.jsonl", content)
    assert report.source_format == "jsonl"
    assert (report.encoding, report.delimiter, report.row_count) == ("utf-8", None, 3)
    assert {field.name: str(field.type) for field in table.schema} == {
        "id": "int64",
        "meta": "string",
        "tags": "string",
        "ok": "bool",
        "score": "double",
        "new": "string",
    }
    assert table.column("meta").to_pylist() == ['{"a": [1, 2], "b": 2}', '{"a": null}', None]
    assert table.column("tags").to_pylist() == ['["x"]', "[]", None]
    assert table.column("new").to_pylist() == [None, "late", None]


def test_jsonl_keys_and_types_change_across_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(python_values, "BATCH_ROWS", 5)
    monkeypatch.setattr(writer, "ROW_GROUP_ROWS", 5)
    lines = [{"n": i} for i in range(12)] + [{"n": "twelve", "": 1, "x": {"k": 1}}]
    content = "".join(json.dumps(line) + "\n" for line in lines).encode()
    report, table = convert_upload(tmp_path, "rows.ndjson", content)
    assert table.column_names == ["n", "column_2", "x"]
    assert table.column("n").to_pylist() == [str(i) for i in range(12)] + ["twelve"]
    assert table.column("x").to_pylist() == [None] * 12 + ['{"k": 1}']
    assert report.renamed_columns == {"": "column_2"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"a": 1}\n{"a": 2}\n{"a": 3,\n', "Line 3 is not valid JSON"),
        (b'{"a": 1}\n\n[1, 2]\n', "Line 3 is not a JSON object"),
        (b'{"a": 1}\n' + b"[" * 100_000 + b"\n", "Line 2 is nested too deeply"),
    ],
)
def test_bad_jsonl_line_is_refused_with_its_number(
    tmp_path: Path, content: bytes, message: str
) -> None:
    error = refused_upload(tmp_path, "rows.jsonl", content)
    assert error.code == "invalid_json"
    assert error.message.startswith(message)


def test_jsonl_integers_beyond_int64_keep_their_digits(tmp_path: Path) -> None:
    content = b'{"n": 1}\n{"n": 123456789012345678901234567890}\n'
    _, table = convert_upload(tmp_path, "big.jsonl", content)
    assert table.column("n").to_pylist() == ["1", "123456789012345678901234567890"]


def test_jsonl_with_too_many_keys_is_refused(tmp_path: Path) -> None:
    content = b'{"a": 1}\n{"b": 1, "c": 2}\n'
    assert refused_upload(tmp_path, "rows.jsonl", content, max_columns=2).code == "too_many_columns"
