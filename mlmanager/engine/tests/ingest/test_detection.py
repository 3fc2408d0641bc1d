"""Format detection."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from mlmanager.engine.ingest import detect_format
from mlmanager.engine.tests.ingest.uploads import parquet_bytes, write_upload, xlsx_bytes


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("a.csv", b"a,b\n1,2\n", "csv"),
        ("a.txt", b"a\tb\n1\t2\n", "csv"),
        ("a.txt", b'{"a": 1}\n{"a": 2}\n', "jsonl"),
        ("a.csv", b'  {"a": 1}\n', "jsonl"),
        ("a.jsonl", b"not json\n", "jsonl"),
        ("a.bin.CSV", b"a\n1\n", "csv"),
        ("a.dat", parquet_bytes(pa.table({"a": [1]})), "parquet"),
        ("a.parquet", b"PAR1truncated", "parquet"),
        ("a.zip", xlsx_bytes([["a"], [1]]), "excel"),
        ("a.xlsx", b"garbage", "excel"),
    ],
)
def test_detect_format(tmp_path: Path, name: str, content: bytes, expected: str) -> None:
    assert detect_format(write_upload(tmp_path, "file", content), name) == expected
