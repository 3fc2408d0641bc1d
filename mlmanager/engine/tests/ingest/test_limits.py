"""The row and cell caps of every format: refused before (Parquet) or while (the others) reading,
with nothing written."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlmanager.engine.ingest import context as ingest_context
from mlmanager.engine.ingest import csv as ingest_csv
from mlmanager.engine.ingest import python_values
from mlmanager.engine.tests.ingest.uploads import (
    convert_upload,
    parquet_bytes,
    refused_upload,
    xlsx_bytes,
)

BOMB_ROWS = 2_000_000


def _parquet_bomb() -> bytes:
    """BOMB_ROWS rows of one repeated value: dictionary and run-length encoding keep it tiny."""
    batch = pa.table({"plan": pa.array(["premium"] * 100_000)})
    buffer = io.BytesIO()
    with pq.ParquetWriter(buffer, batch.schema, compression="zstd") as writer:
        for _ in range(BOMB_ROWS // batch.num_rows):
            writer.write_table(batch)
    return buffer.getvalue()


def _csv(rows: int, columns: int = 2) -> bytes:
    header = ",".join(f"c{index}" for index in range(columns))
    line = ",".join(str(index) for index in range(columns))
    return (header + "\n" + (line + "\n") * rows).encode()


def _jsonl(rows: int, columns: int = 2) -> bytes:
    line = json.dumps({f"c{index}": index for index in range(columns)})
    return ((line + "\n") * rows).encode()


def _xlsx(rows: int, columns: int = 2) -> bytes:
    return xlsx_bytes([[f"c{index}" for index in range(columns)], *[list(range(columns))] * rows])


def _parquet(rows: int, columns: int = 2) -> bytes:
    return parquet_bytes(pa.table({f"c{index}": [index] * rows for index in range(columns)}))


BUILDERS = {"csv": _csv, "jsonl": _jsonl, "xlsx": _xlsx, "parquet": _parquet}


def test_parquet_bomb_is_refused_from_its_footer_before_any_row_is_read(
    tmp_path: Path, monkeypatch
) -> None:
    content = _parquet_bomb()
    assert len(content) < 64 * 1024  # a few KB declaring two million rows

    def read_rows(*args, **kwargs):
        raise AssertionError("a row group was read")

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", read_rows)
    error = refused_upload(tmp_path, "bomb.parquet", content, max_rows=1_000_000)
    assert error.code == "too_many_rows"
    assert error.message == (
        "The file has 2,000,000 rows; this server accepts at most 1,000,000 (MLMANAGER_MAX_ROWS)."
    )


def test_parquet_cells_are_refused_from_its_footer(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(pq.ParquetFile, "iter_batches", None)  # any read would fail
    error = refused_upload(tmp_path, "wide.parquet", _parquet(1000, 3), max_cells=2999)
    assert error.code == "too_many_cells"
    assert error.message == (
        "The file has 3,000 cells (1,000 rows × 3 columns); this server accepts at most 2,999 "
        "(MLMANAGER_MAX_CELLS)."
    )


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "xlsx"])
def test_streamed_formats_are_refused_past_the_row_cap(tmp_path: Path, fmt: str) -> None:
    error = refused_upload(tmp_path, f"data.{fmt}", BUILDERS[fmt](101), max_rows=100)
    assert error.code == "too_many_rows"
    assert error.message == (
        "The file has more than 100 rows; this server accepts at most 100 (MLMANAGER_MAX_ROWS)."
    )


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "xlsx"])
def test_streamed_formats_are_refused_past_the_cell_cap(tmp_path: Path, fmt: str) -> None:
    error = refused_upload(tmp_path, f"data.{fmt}", BUILDERS[fmt](50, 3), max_cells=149)
    assert error.code == "too_many_cells"
    assert error.message == (
        "The file has more than 149 cells (rows × columns); this server accepts at most 149 "
        "(MLMANAGER_MAX_CELLS)."
    )


@pytest.mark.parametrize("fmt", sorted(BUILDERS))
def test_a_file_exactly_at_the_caps_is_loaded(tmp_path: Path, fmt: str) -> None:
    report, table = convert_upload(
        tmp_path, f"data.{fmt}", BUILDERS[fmt](50, 3), max_rows=50, max_cells=150
    )
    assert (report.row_count, report.column_count) == (50, 3)
    assert table.shape == (50, 3)


def test_jsonl_columns_added_late_count_for_every_row(tmp_path: Path) -> None:
    # Six rows of one key, then a seventh brings a second: 7 rows × 2 columns = 14 cells.
    content = _jsonl(6, 1) + b'{"c0": 1, "c1": 2}\n'
    error = refused_upload(tmp_path, "late.jsonl", content, max_cells=13)
    assert error.code == "too_many_cells"
    (tmp_path / "at the cap").mkdir()
    report, _ = convert_upload(tmp_path / "at the cap", "late.jsonl", content, max_cells=14)
    assert (report.row_count, report.column_count) == (7, 2)


def test_csv_stops_at_the_first_block_past_the_cap(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(ingest_csv, "CSV_BLOCK_SIZE", 64 * 1024)
    written: list[int] = []
    write = ingest_context.ReadContext.write

    def counting_write(self, batch: pa.RecordBatch) -> None:
        written.append(batch.num_rows)
        write(self, batch)

    monkeypatch.setattr(ingest_context.ReadContext, "write", counting_write)
    total_rows = 1_000_000  # 4 MB: 64 blocks
    error = refused_upload(tmp_path, "long.csv", _csv(total_rows), max_rows=20_000)
    assert error.code == "too_many_rows"
    # Every block but the last was within the cap; the file's other blocks were never parsed.
    assert sum(written[:-1]) <= 20_000 < sum(written)
    assert sum(written) < total_rows // 10


def test_wide_rows_of_python_values_are_written_in_smaller_batches(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(python_values, "BATCH_MAX_CELLS", 100)
    written: list[int] = []
    write = ingest_context.ReadContext.write

    def counting_write(self, batch: pa.RecordBatch) -> None:
        written.append(batch.num_rows)
        write(self, batch)

    monkeypatch.setattr(ingest_context.ReadContext, "write", counting_write)
    report, _ = convert_upload(tmp_path, "wide.jsonl", _jsonl(45, 10))
    assert report.row_count == 45
    assert written == [10, 10, 10, 10, 5]
