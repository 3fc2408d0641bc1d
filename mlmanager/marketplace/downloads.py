"""A bought data source as CSV, streamed: the Parquet file read a batch at a time, never whole
into memory, each batch written as CSV with formula-like cells escaped (engine `csv_safe`)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from mlmanager.datasets.files import materialise
from mlmanager.engine.prediction import csv_safe

BATCH_ROWS = 10_000


def dataset_csv_chunks(dataset: Any) -> Iterator[bytes]:
    """The dataset's rows as CSV bytes, the header first."""
    parquet = pq.ParquetFile(materialise(dataset.parquet_path))
    header = True
    for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
        buffer = io.BytesIO()
        pa_csv.write_csv(
            csv_safe(pa.Table.from_batches([batch])),
            buffer,
            write_options=pa_csv.WriteOptions(include_header=header),
        )
        header = False
        yield buffer.getvalue()
    if header:  # no rows: the header alone
        buffer = io.BytesIO()
        empty = parquet.schema_arrow.empty_table()
        pa_csv.write_csv(csv_safe(empty), buffer)
        yield buffer.getvalue()
