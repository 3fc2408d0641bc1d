"""Builders of uploaded files, and the round trip through convert_to_parquet the tests share."""

from __future__ import annotations

import io
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlmanager.engine.ingest import IngestError, IngestReport, convert_to_parquet


def write_upload(tmp_path: Path, name: str, content: bytes) -> Path:
    source = tmp_path / "upload" / name
    source.parent.mkdir(exist_ok=True)
    source.write_bytes(content)
    return source


def convert_upload(
    tmp_path: Path, name: str, content: bytes, **options
) -> tuple[IngestReport, pa.Table]:
    source = write_upload(tmp_path, name, content)
    destination = tmp_path / "out" / "data.parquet"
    report = convert_to_parquet(source, destination, original_name=name, **options)
    assert sorted(path.name for path in destination.parent.iterdir()) == ["data.parquet"]
    return report, pq.read_table(destination)


def refused_upload(tmp_path: Path, name: str, content: bytes, **options) -> IngestError:
    source = write_upload(tmp_path, name, content)
    destination = tmp_path / "out" / "data.parquet"
    with pytest.raises(IngestError) as caught:
        convert_to_parquet(source, destination, original_name=name, **options)
    # Neither the destination nor the temporary sibling it was being written to is left behind.
    assert not destination.parent.exists() or list(destination.parent.iterdir()) == []
    return caught.value


def xlsx_bytes(rows: list[list[object]], *, extra_sheets: int = 0) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Data"
    for row in rows:
        sheet.append(row)
    for number in range(extra_sheets):
        workbook.create_sheet(f"Other {number}").append(["x"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def parquet_bytes(table: pa.Table, **options) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, **options)
    return buffer.getvalue()
