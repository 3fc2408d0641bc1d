"""A data set with the rows that got feedback appended, to train a new version on."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

# Rows read from the original file, and feedback rows written, per step.
COPY_CHUNK_ROWS = 65_536


def write_with_feedback(
    source: Path,
    destination: Path,
    rows: Iterable[tuple[Mapping[str, Any], Mapping[str, Any] | None]],
) -> None:
    """Write `destination`: the Parquet file `source`, then one row per `(inputs, actual)`
    pair (the inputs as sent with a prediction, the outputs as their true values, None for
    none), in `source`'s columns and types. Memory stays bounded by a chunk of rows;
    `destination` only appears once complete."""
    original = pq.ParquetFile(source)
    schema = original.schema_arrow
    temporary = destination.with_name(destination.name + ".part")
    try:
        with pq.ParquetWriter(temporary, schema) as writer:
            for batch in original.iter_batches(batch_size=COPY_CHUNK_ROWS):
                writer.write_batch(batch)
            records = []
            for inputs, actual in rows:
                record = {name: inputs.get(name) for name in schema.names}
                record.update({k: v for k, v in (actual or {}).items() if k in schema.names})
                records.append(record)
                if len(records) >= COPY_CHUNK_ROWS:
                    writer.write_table(_typed(records, schema))
                    records = []
            if records:
                writer.write_table(_typed(records, schema))
        temporary.replace(destination)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _typed(records: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Feedback rows in the file's column types; a value that does not fit becomes missing
    (the rows came through the model's input checks, so this is rare)."""
    columns = {}
    for field in schema:
        values = [record[field.name] for record in records]
        try:
            columns[field.name] = pa.array(values, type=field.type, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
            columns[field.name] = pa.array(
                [_fit(value, field.type) for value in values], type=field.type
            )
    return pa.table(columns, schema=schema)


def _fit(value: Any, type_: pa.DataType) -> Any:
    try:
        return pa.scalar(value).cast(type_).as_py()
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError):
        try:
            return pa.scalar(str(value)).cast(type_).as_py()
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            return None
