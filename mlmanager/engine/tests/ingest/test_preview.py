"""Reading pages of a converted file."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlmanager.engine.ingest import read_preview


def test_read_preview_reads_the_requested_rows_as_json_safe_values(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    count = 35
    table = pa.table(
        {
            "n": list(range(count)),
            "f": [float("nan") if i == 9 else i / 2 for i in range(count)],
            "s": [None if i == 10 else f"s{i}" for i in range(count)],
            "when": [dt.datetime(2020, 1, 1) + dt.timedelta(days=i) for i in range(count)],
            "day": [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(count)],
        }
    )
    pq.write_table(table, path, row_group_size=10)
    names, rows = read_preview(path, offset=8, limit=15)
    assert names == ["n", "f", "s", "when", "day"]
    assert [row[0] for row in rows] == list(range(8, 23))
    assert rows[1] == [9, None, "s9", "2020-01-10T00:00:00", "2020-01-10"]
    assert rows[2] == [10, 5.0, None, "2020-01-11T00:00:00", "2020-01-11"]
    json.dumps(rows, allow_nan=False)
    assert read_preview(path, offset=30, limit=100)[1][-1][0] == 34
    assert read_preview(path, offset=35, limit=10) == (names, [])
    assert read_preview(path, offset=0, limit=0) == (names, [])
    with pytest.raises(ValueError):
        read_preview(path, offset=-1, limit=5)


def test_read_preview_converts_unusual_types(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    table = pa.table(
        {
            "span": pa.array([dt.timedelta(seconds=90)]),
            "raw": pa.array([b"\xffab"]),
            "money": pa.array(["1.25"]).cast(pa.decimal128(5, 2)),
            "nested": pa.array([{"a": [1.5, float("inf")], "t": dt.date(2020, 1, 2)}]),
            "nanos": pa.array([1_500], pa.timestamp("ns")),
            "clock": pa.array([dt.time(10, 30)]),
        }
    )
    pq.write_table(table, path)
    _, rows = read_preview(path, offset=0, limit=1)
    assert rows == [
        [
            90.0,
            "\ufffdab",
            1.25,
            {"a": [1.5, None], "t": "2020-01-02"},
            "1970-01-01T00:00:00.000001500",
            "10:30:00",
        ]
    ]
    json.dumps(rows, allow_nan=False)
