"""Excel input, end to end through convert_to_parquet."""

from __future__ import annotations

import datetime as dt
import io
import random
import zipfile
from pathlib import Path

import pytest

from mlmanager.engine.ingest import excel, python_values, writer
from mlmanager.engine.tests.ingest.uploads import convert_upload, refused_upload, xlsx_bytes


def test_xlsx_first_sheet_is_read_with_types(tmp_path: Path) -> None:
    rows = [
        ["id", "name", "price", "when", "ok", "mixed", None, "id"],
        [1, "apple", 1.5, dt.datetime(2020, 1, 2, 3, 4, 5), True, 1, None, 10],
        [None, None, None, None, None, None, None, None],  # blank rows are skipped
        [2, "<b>pear</b>", 2, dt.datetime(2021, 2, 3), False, "n/a", None, 20],
        [3, "@SUM(A1:A2)", "#DIV/0!", None, None, 2.5, None, 30],
    ]
    report, table = convert_upload(tmp_path, "book.xlsx", xlsx_bytes(rows, extra_sheets=2))
    assert report.source_format == "excel"
    assert table.column_names == ["id", "name", "price", "when", "ok", "mixed", "column_7", "id_2"]
    assert {field.name: str(field.type) for field in table.schema} == {
        "id": "int64",
        "name": "string",
        "price": "double",
        "when": "timestamp[us]",
        "ok": "bool",
        # "n/a" is a missing-value token, so the rest are numbers (values.MissingValueScan).
        "mixed": "double",
        "column_7": "null",
        "id_2": "int64",
    }
    assert table.column("name").to_pylist() == ["apple", "<b>pear</b>", "@SUM(A1:A2)"]
    assert table.column("price").to_pylist() == [1.5, 2.0, None]
    assert table.column("when").to_pylist() == [
        dt.datetime(2020, 1, 2, 3, 4, 5),
        dt.datetime(2021, 2, 3),
        None,
    ]
    assert table.column("mixed").to_pylist() == [1.0, None, 2.5]
    assert report.missing_tokens["mixed"] == {"n/a": 1}
    assert report.row_count == 3
    assert report.renamed_columns == {"": "column_7", "id": "id_2"}
    assert report.notes == [
        "Renamed 2 duplicate or empty column names.",
        "Read the first sheet, “Data”; the workbook has 3 sheets.",
        "Treated 1 Excel error cell (such as #DIV/0!) as missing.",
    ]


def test_xlsx_types_widen_across_written_row_groups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(python_values, "BATCH_ROWS", 10)
    monkeypatch.setattr(writer, "ROW_GROUP_ROWS", 10)
    rows = [["n", "code"]] + [[i, i] for i in range(25)] + [[2.5, "X1"], [None, None, "extra"]]
    report, table = convert_upload(tmp_path, "book.xlsx", xlsx_bytes(rows))
    assert table.column_names == ["n", "code", "column_3"]
    assert [str(t) for t in table.schema.types] == ["double", "string", "string"]
    assert table.column("n").to_pylist()[:3] == [0.0, 1.0, 2.0]
    assert table.column("n").to_pylist()[-2:] == [2.5, None]
    assert table.column("code").to_pylist()[-3:] == ["24", "X1", None]
    assert table.column("column_3").to_pylist() == [None] * 26 + ["extra"]
    assert report.row_count == 27


def test_xlsx_header_only_and_empty_sheet_are_refused(tmp_path: Path) -> None:
    assert refused_upload(tmp_path, "h.xlsx", xlsx_bytes([["a", "b"]])).code == "no_rows"
    assert refused_upload(tmp_path, "e.xlsx", xlsx_bytes([])).code == "empty_file"


def test_xlsx_with_too_many_columns_is_refused(tmp_path: Path) -> None:
    content = xlsx_bytes([[f"c{i}" for i in range(6)], list(range(6))])
    assert refused_upload(tmp_path, "w.xlsx", content, max_columns=5).code == "too_many_columns"


def test_xlsx_zip_bomb_is_refused_by_compression_ratio(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"\x00" * (11 * 1024 * 1024))
    content = buffer.getvalue()
    assert len(content) < 100_000
    error = refused_upload(tmp_path, "bomb.xlsx", content)
    assert error.code == "zip_bomb"


def test_xlsx_zip_bomb_is_refused_by_total_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(excel, "ZIP_MAX_TOTAL_UNCOMPRESSED", 1000)
    content = xlsx_bytes([["a"], [1]])
    assert refused_upload(tmp_path, "big.xlsx", content).code == "zip_bomb"


def _zip_with_xl_garbage() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("xl/workbook.xml", "<not-a-workbook")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "content",
    [
        random.Random(5).randbytes(2000),
        xlsx_bytes([["a"], [1]])[:-200],
        _zip_with_xl_garbage(),
        b"a,b\n1,2\n",
    ],
    ids=["random-bytes", "truncated", "garbage-entries", "text"],
)
def test_corrupt_xlsx_is_refused(tmp_path: Path, content: bytes) -> None:
    assert refused_upload(tmp_path, "broken.xlsx", content).code == "corrupt_excel"


def test_xlsx_named_csv_is_detected_by_content(tmp_path: Path) -> None:
    report, table = convert_upload(tmp_path, "export.csv", xlsx_bytes([["a"], [1], [2]]))
    assert report.source_format == "excel"
    assert table.to_pydict() == {"a": [1, 2]}
