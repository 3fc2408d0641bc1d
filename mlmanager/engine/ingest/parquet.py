"""Parquet input: checked for damage and size, copied batch by batch with plain column types."""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mlmanager.engine.ingest.context import ReadContext
from mlmanager.engine.ingest.errors import (
    IngestError,
    IngestReport,
    guarded,
    no_rows_error,
    too_many_columns_error,
)
from mlmanager.engine.ingest.naming import ColumnNamer
from mlmanager.engine.ingest.python_values import json_text
from mlmanager.engine.ingest.writer import ROW_GROUP_ROWS

logger = logging.getLogger(__name__)

# A batch read fills one row group written.
READ_BATCH_ROWS = ROW_GROUP_ROWS


def convert_parquet(source: Path, context: ReadContext) -> IngestReport:
    try:
        parquet_file = pq.ParquetFile(source)
        schema = parquet_file.schema_arrow
    except (pa.ArrowException, OSError) as exc:
        raise _corrupt_parquet_error(exc) from exc
    if len(schema) > context.max_columns:
        raise too_many_columns_error(len(schema), context.max_columns)
    if len(schema) == 0:
        raise IngestError("The Parquet file has no columns.", code="empty_file")
    # The footer's row count is the sum of the row groups' own, read before any of them is
    # decoded: a few hundred KB of dictionary- and run-length-encoded values can declare tens
    # of millions of rows.
    declared_rows = parquet_file.metadata.num_rows
    context.check_declared_size(declared_rows, len(schema))
    namer = ColumnNamer()
    names = namer.add(schema.names)
    total_rows = max(declared_rows, 1)
    batches = guarded(
        parquet_file.iter_batches(batch_size=READ_BATCH_ROWS),
        _corrupt_parquet_error,
        pa.ArrowException,
        OSError,
    )
    rows_read = 0
    for batch in batches:
        context.check_cancelled()
        arrays = [_normalise_array(column) for column in batch.columns]
        context.write(pa.RecordBatch.from_arrays(arrays, names=names))
        rows_read += batch.num_rows
        context.progress(rows_read / total_rows)
    if context.sink.rows == 0:
        raise no_rows_error()
    return context.report("parquet", namer, notes=namer.notes())


def _corrupt_parquet_error(exc: Exception) -> IngestError:
    logger.info("corrupt parquet: %s", exc)
    return IngestError(
        "This Parquet file is damaged or incomplete (it may have been cut off during upload).",
        code="corrupt_parquet",
    )


def _normalise_array(array: pa.Array) -> pa.Array:
    """Reduce exotic Arrow types to the plain ones the profiler and trainers expect."""
    arrow_type = array.type
    if pa.types.is_dictionary(arrow_type):
        return _normalise_array(array.dictionary_decode())
    if pa.types.is_large_string(arrow_type) or pa.types.is_string_view(arrow_type):
        return array.cast(pa.string())
    if pa.types.is_decimal(arrow_type):
        return array.cast(pa.float64())
    if pa.types.is_nested(arrow_type):
        return pa.array(
            [None if value is None else json_text(value) for value in array.to_pylist()],
            pa.string(),
        )
    return array
