"""Result files: Parquet as it is, CSV made safe to open in a spreadsheet.

A CSV cell whose text starts like a formula (=, +, -, @, a tab or a carriage return) would be
run by a spreadsheet that opens the file (OWASP "CSV injection"): such cells are prefixed with
an apostrophe, which spreadsheets show as text. Types the CSV writer cannot write (lists,
structs, binary, dictionary-encoded text) are written as their text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

RESULT_FORMATS = ("csv", "parquet")

# Text a spreadsheet would evaluate as a formula.
_FORMULA_START = r"^[=+\-@\t\r]"


def csv_safe(table: pa.Table) -> pa.Table:
    """`table` with formula-like text cells escaped and every column in a type CSV can hold."""
    columns = []
    for column in table.columns:
        kind = column.type
        if pa.types.is_dictionary(kind):
            column = column.cast(kind.value_type)
            kind = kind.value_type
        if pa.types.is_nested(kind) or pa.types.is_binary(kind):
            column = pa.chunked_array(
                [pa.array([None if v is None else str(v) for v in column.to_pylist()])],
                type=pa.string(),
            )
            kind = pa.string()
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            risky = pc.match_substring_regex(column, _FORMULA_START)
            # The separators in the column's own type: a large_string column (pandas
            # writes them) has no kernel joining it with plain strings.
            quote, nothing = pa.scalar("'", type=kind), pa.scalar("", type=kind)
            column = pc.if_else(risky, pc.binary_join_element_wise(quote, column, nothing), column)
        columns.append(column)
    return pa.table(columns, names=table.column_names)


class ResultWriter:
    """Writes tables of one schema (the first table's) to `path` as CSV or Parquet; a later
    table whose types differ (a column all missing in its chunk) is cast to that schema."""

    def __init__(self, path: Path, result_format: str):
        if result_format not in RESULT_FORMATS:
            raise ValueError(f"unknown result format {result_format!r}")
        self.path = path
        self.csv = result_format == "csv"
        self._writer: Any = None
        self._schema: pa.Schema | None = None

    def write(self, table: pa.Table) -> None:
        if self.csv:
            table = csv_safe(table)
        if self._writer is None:
            self._schema = table.schema
            self._writer = (
                pa_csv.CSVWriter(str(self.path), table.schema)
                if self.csv
                else pq.ParquetWriter(self.path, table.schema)
            )
        elif table.schema != self._schema:
            table = table.cast(self._schema)
        self._writer.write_table(table)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
