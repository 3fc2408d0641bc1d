"""Rows of a converted Parquet file as JSON-safe values, for showing a page of the data."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pyarrow.parquet as pq


def read_preview(
    parquet_path: Path, *, offset: int, limit: int
) -> tuple[list[str], list[list[object]]]:
    """Return the column names and rows offset..offset+limit as JSON-safe Python values.

    Only the row groups that hold those rows are read.
    """
    if offset < 0 or limit < 0:
        raise ValueError("offset and limit must not be negative")
    parquet_file = pq.ParquetFile(parquet_path)
    names = parquet_file.schema_arrow.names
    end = min(offset + limit, parquet_file.metadata.num_rows)
    if offset >= end:
        return names, []
    groups: list[int] = []
    first_group_start = 0
    group_start = 0
    for index in range(parquet_file.num_row_groups):
        group_rows = parquet_file.metadata.row_group(index).num_rows
        if group_start < end and group_start + group_rows > offset:
            if not groups:
                first_group_start = group_start
            groups.append(index)
        group_start += group_rows
    table = parquet_file.read_row_groups(groups).slice(offset - first_group_start, end - offset)
    columns = [[_json_safe(value) for value in column.to_pylist()] for column in table.columns]
    return names, [list(row) for row in zip(*columns, strict=True)]


def _json_safe(value: object) -> object:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if hasattr(value, "isoformat"):  # pandas.Timestamp for nanosecond timestamps
        return value.isoformat()
    try:
        number = float(value)  # type: ignore[arg-type]  # Decimal and numpy scalars
    except (TypeError, ValueError):
        return str(value)
    return number if math.isfinite(number) else None
