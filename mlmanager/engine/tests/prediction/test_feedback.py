"""write_with_feedback: a data set's rows, then the rows that got feedback, in its types."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlmanager.engine.prediction import write_with_feedback


def test_feedback_rows_are_appended_in_the_files_types(tmp_path: Path) -> None:
    folder = tmp_path / "work"  # tmp_path also holds the test settings' media folders
    folder.mkdir()
    source = folder / "data.parquet"
    pq.write_table(
        pa.table({"x": [1.5, 2.5], "seats": [1, 2], "plan": ["a", "b"], "churned": ["no", "yes"]}),
        source,
    )
    destination = folder / "with-feedback.parquet"
    rows = [
        ({"x": 3.5, "seats": "4", "plan": "c", "ignored": 1}, {"churned": "yes"}),
        ({"x": None, "seats": "many"}, {"churned": "no", "unknown": 1}),  # "many": no integer
    ]
    write_with_feedback(source, destination, iter(rows))
    written = pq.read_table(destination)
    assert written.schema == pq.read_schema(source)
    assert written.to_pydict() == {
        "x": [1.5, 2.5, 3.5, None],
        "seats": [1, 2, 4, None],
        "plan": ["a", "b", "c", None],
        "churned": ["no", "yes", "yes", "no"],
    }
    assert sorted(path.name for path in folder.iterdir()) == [
        "data.parquet",
        "with-feedback.parquet",
    ]


def test_a_failed_write_leaves_no_file(tmp_path: Path) -> None:
    folder = tmp_path / "work"  # tmp_path also holds the test settings' media folders
    folder.mkdir()
    source = folder / "data.parquet"
    pq.write_table(pa.table({"x": [1.0]}), source)

    def rows():
        yield {"x": 2.0}, {}
        raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError):
        write_with_feedback(source, folder / "out.parquet", rows())
    assert [path.name for path in folder.iterdir()] == ["data.parquet"]
