"""Rows of Python values (Excel cells, parsed JSON) written to the sink as typed Arrow batches.

Excel and JSON Lines carry no schema, so each batch's column types come from the values in it;
the Parquet sink reconciles batches that disagree.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from typing import Any

import pyarrow as pa

from mlmanager.engine.ingest.context import ReadContext
from mlmanager.engine.ingest.naming import ColumnNamer

# Excel and JSON Lines rows are converted to Arrow this many at a time, or fewer for wide
# tables: held as Python objects a cell takes 33 bytes (a float) to 66 (a short string,
# measured), so 10 000 rows of 10 000 columns would hold 3-7 GB before the first write.
BATCH_ROWS = 10_000
BATCH_MAX_CELLS = 1_000_000

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class RowBuffer:
    """Collects rows of Python values and writes them to the sink a batch at a time.

    Columns can be added on the way (a new JSON key, a cell right of the Excel header); the rows
    already held are shorter and read as empty in them. Names come from `namer` at each write.
    """

    def __init__(self, context: ReadContext, namer: ColumnNamer, *, width: int = 0) -> None:
        self.width = width
        self._context = context
        self._namer = namer
        self._rows: list[list[Any]] = []

    def add_columns(self, count: int) -> None:
        self.width += count

    def append(self, values: list[Any], *, share_read: float) -> None:
        """Hold one row, a value for each of the `width` columns; `share_read` is the share of
        the input read so far, reported when a full batch is written."""
        self._rows.append(values)
        if len(self._rows) >= BATCH_ROWS or len(self._rows) * self.width >= BATCH_MAX_CELLS:
            self._context.check_cancelled()
            self._write()
            self._context.progress(share_read)

    def finish(self) -> None:
        """Write the rows still held."""
        if self._rows:
            self._write()

    def _write(self) -> None:
        # Transposing in C is much faster than appending value by value; rows held from before
        # columns were added are filled with None.
        columns = itertools.zip_longest(*self._rows, fillvalue=None)
        arrays = [python_array(list(values)) for values in columns]
        self._rows = []
        self._context.write(pa.RecordBatch.from_arrays(arrays, names=self._namer.names))


def python_array(values: list[Any]) -> pa.Array:
    """Type a column of Python values: one kind keeps its type, ints with floats become
    float, anything else mixed becomes text (nested values as JSON text)."""
    # Classifying distinct Python types rather than each value keeps this loop in C.
    kinds = {_kind_of_type(value_type) for value_type in set(map(type, values)) - {type(None)}}
    if "int" in kinds:
        integers = [value for value in values if type(value) is int]
        if integers and not _INT64_MIN <= min(integers) <= max(integers) <= _INT64_MAX:
            kinds = (kinds - {"int"}) | {"text"}  # too big for Arrow's int64: keep the digits
    if not kinds:
        return pa.nulls(len(values))
    if kinds == {"bool"}:
        return pa.array(values, pa.bool_())
    if kinds == {"int"}:
        return pa.array(values, pa.int64())
    if kinds <= {"int", "float"}:
        return pa.array(values, pa.float64())
    if kinds == {"datetime"}:
        return pa.array([_naive_datetime(value) for value in values], pa.timestamp("us"))
    if kinds == {"string"}:
        return pa.array(values, pa.string())
    return pa.array([_value_text(value) for value in values], pa.string())


def json_text(value: object) -> str:
    """Nested values as text, with sorted keys so equal values read the same."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _kind_of_type(value_type: type) -> str:
    if value_type is bool:
        return "bool"
    if issubclass(value_type, int):
        return "int"
    if issubclass(value_type, float):
        return "float"
    if issubclass(value_type, dt.date):  # datetime.datetime included
        return "datetime"
    if issubclass(value_type, str):
        return "string"
    return "text"


def _naive_datetime(value: dt.date | None) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        return dt.datetime.combine(value, dt.time())
    if value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _value_text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json_text(value)
    return str(value)
