"""What convert_to_parquet does for every format: refusals, the atomic write, progress,
cancellation and the report."""

from __future__ import annotations

import io
import json
import random
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlmanager.engine.ingest import (
    IngestError,
    convert_to_parquet,
    csv_dialect,
    csv_stream,
    parquet,
    python_values,
    writer,
)
from mlmanager.engine.ingest import csv as ingest_csv
from mlmanager.engine.tests.ingest.uploads import (
    convert_upload,
    parquet_bytes,
    refused_upload,
    write_upload,
    xlsx_bytes,
)

# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "code"),
    [
        ("empty.csv", b"", "empty_file"),
        ("blank.csv", b"  \n\n\t \r\n", "empty_file"),
        ("bom.csv", b"\xef\xbb\xbf\n", "empty_file"),
        ("header.csv", b"a,b,c\n", "no_rows"),
        ("header.csv", b"a,b,c", "no_rows"),
        ("ragged.csv", b"a,b,c\n1,2\n3,4,5,6\n", "no_rows"),
        ("png.csv", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8, "binary_file"),
        ("elf.csv", b"\x7fELF\x02\x01\x01" + bytes(500), "binary_file"),
        ("zeros.csv", bytes(4096), "binary_file"),
        ("random.csv", random.Random(7).randbytes(8192), "binary_file"),
        ("gzip.csv", b"\x1f\x8b\x08\x00" + random.Random(3).randbytes(500), "binary_file"),
        ("letter.docx", b"a,b\n1,2\n", "unsupported_format"),
        ("data.json", b'[{"a": 1}]', "unsupported_format"),
        ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "unsupported_format"),
        ("old.csv", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "unsupported_format"),
    ],
)
def test_bad_files_are_refused(tmp_path: Path, name: str, content: bytes, code: str) -> None:
    assert refused_upload(tmp_path, name, content).code == code


def test_zip_archive_renamed_csv_is_unsupported(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("data.csv", "a,b\n1,2\n")
    error = refused_upload(tmp_path, "data.csv", buffer.getvalue())
    assert error.code == "unsupported_format"
    assert "ZIP archive" in error.message


def test_no_rows_message_mentions_skipped_rows(tmp_path: Path) -> None:
    error = refused_upload(tmp_path, "ragged.csv", b"a,b,c\n1,2\n3,4,5,6\n")
    assert error.message == (
        "None of the 2 data rows has the same number of fields as the header, so there is "
        "nothing to load."
    )


def test_hundred_thousand_column_header_is_refused(tmp_path: Path) -> None:
    header = ",".join(f"c{i}" for i in range(100_000))
    body = ",".join("1" for _ in range(100_000))
    error = refused_upload(tmp_path, "wide.csv", f"{header}\n{body}\n".encode())
    assert error.code == "too_many_columns"
    assert error.message == "The file has 100,000 columns; at most 10,000 are supported."


def test_max_columns_is_configurable(tmp_path: Path) -> None:
    assert refused_upload(tmp_path, "w.csv", b"a,b,c,d\n1,2,3,4\n", max_columns=3).code == (
        "too_many_columns"
    )
    report, _ = convert_upload(tmp_path, "w.csv", b"a,b,c\n1,2,3\n", max_columns=3)
    assert report.column_count == 3


def test_header_longer_than_the_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv_dialect, "HEADER_MAX_CHARS", 1000)
    error = refused_upload(tmp_path, "long.csv", b"x" * 5000 + b"\n1\n")
    assert error.code == "invalid_file"


def test_existing_destination_is_replaced_only_on_success(tmp_path: Path) -> None:
    destination = tmp_path / "out" / "data.parquet"
    destination.parent.mkdir()
    destination.write_bytes(b"old")
    source = write_upload(tmp_path, "bad.csv", b"a,b\n")
    with pytest.raises(IngestError):
        convert_to_parquet(source, destination, original_name="bad.csv")
    assert destination.read_bytes() == b"old"
    assert [path.name for path in destination.parent.iterdir()] == ["data.parquet"]
    good = write_upload(tmp_path, "good.csv", b"a\n1\n")
    convert_to_parquet(good, destination, original_name="good.csv")
    assert pq.read_table(destination).to_pydict() == {"a": [1]}


# --- progress and cancellation ---------------------------------------------------------------


def test_progress_rises_to_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest_csv, "CSV_BLOCK_SIZE", 64 * 1024)
    monkeypatch.setattr(csv_stream, "STREAM_CHUNK_BYTES", 64 * 1024)
    content = ("n,text\n" + "".join(f"{i},row {i}\n" for i in range(200_000))).encode()
    shares: list[float] = []
    convert_upload(tmp_path, "p.csv", content, on_progress=shares.append)
    assert len(shares) >= 3
    assert shares == sorted(shares)
    assert 0 < shares[0] < 1
    assert shares[-1] == 1.0


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "xlsx", "parquet"])
def test_cancelling_stops_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    monkeypatch.setattr(ingest_csv, "CSV_BLOCK_SIZE", 4096)
    monkeypatch.setattr(python_values, "BATCH_ROWS", 100)
    monkeypatch.setattr(writer, "ROW_GROUP_ROWS", 100)
    monkeypatch.setattr(parquet, "READ_BATCH_ROWS", 100)
    rows = [{"n": i, "s": f"v{i}"} for i in range(1000)]
    content = {
        "csv": ("n,s\n" + "".join(f"{r['n']},{r['s']}\n" for r in rows)).encode(),
        "jsonl": "".join(json.dumps(r) + "\n" for r in rows).encode(),
        "xlsx": xlsx_bytes([["n", "s"]] + [[r["n"], r["s"]] for r in rows]),
        "parquet": parquet_bytes(pa.Table.from_pylist(rows), row_group_size=100),
    }[fmt]
    calls = 0

    def should_cancel() -> bool:
        nonlocal calls
        calls += 1
        return calls > 2

    error = refused_upload(tmp_path, f"data.{fmt}", content, should_cancel=should_cancel)
    assert error.code == "cancelled"
    assert calls == 3


# --- report --------------------------------------------------------------------------------


def test_report_to_dict(tmp_path: Path) -> None:
    report, _ = convert_upload(tmp_path, "a.csv", b"a,a\n1,2\n")
    assert report.to_dict() == {
        "source_format": "csv",
        "row_count": 1,
        "column_count": 2,
        "encoding": "utf-8",
        "delimiter": ",",
        "skipped_rows": 0,
        "renamed_columns": {"a": "a_2"},
        "notes": ["Renamed 1 duplicate or empty column name."],
        "decimal_separator": ".",
        "thousands_separator": None,
        "missing_tokens": {},
        "conversions": [],
    }
