"""Store text columns of a converted Parquet file as numbers, read in the file's number format.

Used when reading found text columns that are numbers apart from missing-value tokens, and when
a user sets such a column's type to a number: training then reads numbers, not text that
pandas would turn into missing without a word ("100,85" is not a number to `pd.to_numeric`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mlmanager.engine.ingest.values import NumberConversion, NumberFormat, parse_numbers
from mlmanager.engine.ingest.writer import atomic_parquet_file

logger = logging.getLogger(__name__)


def convert_columns_to_numbers(
    path: Path, columns: Mapping[str, bool], number_format: NumberFormat
) -> dict[str, NumberConversion]:
    """Rewrite the Parquet file at `path` with each of `columns` (name → whether to store it as
    int64 rather than float64) read as numbers in `number_format`; return what each conversion
    did. Columns that are missing or already not text are left alone. Row group by row group,
    so memory holds one group; the file is replaced only when the new one is complete."""
    parquet_file = pq.ParquetFile(path)
    schema = parquet_file.schema_arrow
    chosen = {
        name: integer
        for name, integer in columns.items()
        if name in schema.names and pa.types.is_string(schema.field(name).type)
    }
    if not chosen or not parquet_file.num_row_groups:
        return {}
    conversions = {name: NumberConversion() for name in chosen}
    with atomic_parquet_file(path) as sink:
        for index in range(parquet_file.num_row_groups):
            group = parquet_file.read_row_group(index)
            arrays = []
            for name, column in zip(group.column_names, group.columns, strict=True):
                if name in chosen:
                    numbers, conversion = parse_numbers(column.combine_chunks(), number_format)
                    conversions[name].add(conversion)
                    if chosen[name]:
                        numbers = numbers.cast(pa.int64())
                    arrays.append(numbers)
                else:
                    arrays.append(column.combine_chunks())
            sink.write(pa.RecordBatch.from_arrays(arrays, names=group.column_names))
    logger.info("stored %s as numbers in %s", sorted(chosen), path)
    return conversions
