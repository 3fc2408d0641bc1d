"""The Parquet output every reader writes to, and the temporary file that makes it atomic."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

logger = logging.getLogger(__name__)

ROW_GROUP_ROWS = 100_000
# Wide tables reach this long before the row limit; it bounds the write buffer.
ROW_GROUP_MAX_BYTES = 64 << 20


@contextlib.contextmanager
def atomic_parquet_file(destination: Path) -> Iterator[ParquetSink]:
    """Give a sink that writes to a temporary sibling of `destination`, moved into place when
    the block finishes; on any error the temporary file is removed and nothing new appears at
    `destination`, so a half-written file is never mistaken for a finished one."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary_name = tempfile.mkstemp(
        prefix=f".{destination.name}.", suffix=".part", dir=destination.parent
    )
    os.close(descriptor)
    temporary = Path(temporary_name)
    sink = ParquetSink(temporary)
    try:
        yield sink
        sink.close()
        os.replace(temporary, destination)
    except BaseException:
        sink.abort()
        temporary.unlink(missing_ok=True)
        raise


class ParquetSink:
    """Writes record batches to one Parquet file in row groups of ROW_GROUP_ROWS.

    JSON Lines and Excel have no schema up front, so a batch may bring a new column or a value
    that does not fit a column's type; the sink then widens the schema (int to float, anything
    mixed to text) and rewrites what it has written so far. That is rare and happens early.
    """

    def __init__(self, path: Path):
        self.path = path
        self.schema: pa.Schema | None = None
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._pending_bytes = 0

    def write(self, batch: pa.RecordBatch) -> None:
        table = pa.Table.from_batches([batch])
        if self.schema is None:
            self.schema = table.schema
        elif not table.schema.equals(self.schema):
            widened = _widen_schema(self.schema, table.schema)
            if not widened.equals(self.schema):
                self._migrate(widened)
            table = _conform(table, widened)
        self._pending.append(table)
        self._pending_rows += table.num_rows
        self._pending_bytes += table.nbytes
        self.rows += table.num_rows
        if self._pending_rows >= ROW_GROUP_ROWS or self._pending_bytes >= ROW_GROUP_MAX_BYTES:
            # Past the byte limit everything goes out, even a row group shorter than the rest.
            self._flush(everything=self._pending_bytes >= ROW_GROUP_MAX_BYTES)

    def close(self) -> None:
        self._flush(everything=True)
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def abort(self) -> None:
        if self._writer is not None:
            try:
                self._writer.close()
            except (OSError, pa.ArrowException):
                logger.warning("could not close parquet writer for %s", self.path, exc_info=True)
            self._writer = None
        self._pending.clear()

    def reset(self) -> None:
        """Forget everything written, to start the conversion over."""
        self.abort()
        self.path.unlink(missing_ok=True)
        self.schema = None
        self.rows = self._pending_rows = self._pending_bytes = 0

    def _flush(self, *, everything: bool) -> None:
        if not self._pending:
            return
        assert self.schema is not None
        table = pa.concat_tables(self._pending)
        self._pending.clear()
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, self.schema)
        while table.num_rows >= ROW_GROUP_ROWS or (everything and table.num_rows):
            self._writer.write_table(table.slice(0, ROW_GROUP_ROWS), row_group_size=ROW_GROUP_ROWS)
            table = table.slice(ROW_GROUP_ROWS)
        if table.num_rows:
            self._pending.append(table)
        self._pending_rows = table.num_rows
        self._pending_bytes = table.nbytes

    def _migrate(self, schema: pa.Schema) -> None:
        self._pending = [_conform(table, schema) for table in self._pending]
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            previous = self.path.with_name(self.path.name + ".previous")
            os.replace(self.path, previous)
            try:
                writer = pq.ParquetWriter(self.path, schema)
                written = pq.ParquetFile(previous)
                for index in range(written.num_row_groups):
                    writer.write_table(_conform(written.read_row_group(index), schema))
                self._writer = writer
            finally:
                previous.unlink(missing_ok=True)
        self.schema = schema


def _widen_type(current: pa.DataType, incoming: pa.DataType) -> pa.DataType:
    if current == incoming or pa.types.is_null(incoming):
        return current
    if pa.types.is_null(current):
        return incoming
    numeric = {pa.int64(), pa.float64()}
    if current in numeric and incoming in numeric:
        return pa.float64()
    return pa.string()


def _widen_schema(current: pa.Schema, incoming: pa.Schema) -> pa.Schema:
    incoming_types = {field.name: field.type for field in incoming}
    fields = [
        pa.field(field.name, _widen_type(field.type, incoming_types.get(field.name, pa.null())))
        for field in current
    ]
    fields += [field for field in incoming if field.name not in set(current.names)]
    return pa.schema(fields)


def _conform(table: pa.Table | pa.RecordBatch, schema: pa.Schema) -> pa.Table:
    columns = []
    for field in schema:
        if field.name in table.schema.names:
            column = table.column(field.name)
            columns.append(column if column.type == field.type else column.cast(field.type))
        else:
            columns.append(pa.nulls(table.num_rows, field.type))
    return pa.Table.from_arrays(columns, schema=schema)
