"""Result files: CSV cells a spreadsheet would run as formulas are escaped; Parquet as it is."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlmanager.engine.prediction import ResultWriter, csv_safe


def test_formula_like_text_gets_an_apostrophe_and_nothing_else_changes() -> None:
    cells = ['=HYPERLINK("http://evil")', "+1", "-cmd", "@SUM(A1)", "\tx", "\rx", "plain", "a=b"]
    table = pa.table(
        {
            "note": cells,
            "large": pa.array(cells, type=pa.large_string()),  # as pandas writes text
            "number": list(range(len(cells))),
            "gap": pa.array([None] * len(cells), type=pa.string()),
        }
    )
    safe = csv_safe(table)
    escaped = ["'" + cell for cell in cells[:6]] + ["plain", "a=b"]
    assert safe.column("note").to_pylist() == escaped
    assert safe.column("large").to_pylist() == escaped
    assert safe.column("number") == table.column("number")
    assert safe.column("gap").to_pylist() == [None] * len(cells)


def test_types_csv_cannot_hold_are_written_as_text() -> None:
    table = pa.table(
        {
            "tags": pa.array([["=a", "b"], None]),
            "raw": pa.array([b"=x", b"y"], type=pa.binary()),
            "level": pa.array(["=low", "high"]).dictionary_encode(),
        }
    )
    safe = csv_safe(table)
    assert [field.type for field in safe.schema] == [pa.string()] * 3
    assert safe.column("tags").to_pylist() == ["['=a', 'b']", None]
    assert safe.column("raw").to_pylist() == ["b'=x'", "b'y'"]  # a repr: never a formula
    assert safe.column("level").to_pylist() == ["'=low", "high"]


def test_the_csv_writer_escapes_and_casts_later_chunks_to_the_first(tmp_path: Path) -> None:
    path = tmp_path / "result.csv"
    with ResultWriter(path, "csv") as writer:
        writer.write(pa.table({"note": ["=1+1"], "value": [1.5]}))
        writer.write(pa.table({"note": ["ok"], "value": pa.array([None], pa.null())}))
    with path.open(newline="") as file:
        assert list(csv.reader(file)) == [["note", "value"], ["'=1+1", "1.5"], ["ok", ""]]


def test_the_parquet_writer_keeps_text_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "result.parquet"
    with ResultWriter(path, "parquet") as writer:
        writer.write(pa.table({"note": ["=1+1"]}))
    assert pq.read_table(path).column("note").to_pylist() == ["=1+1"]


def test_an_unknown_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="xlsx"):
        ResultWriter(tmp_path / "result.xlsx", "xlsx")
