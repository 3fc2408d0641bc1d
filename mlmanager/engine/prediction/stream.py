"""A file of any length predicted chunk by chunk into a result file.

Memory stays bounded by one chunk whatever the file's length (5 000 000 rows run in well under
1 GB with the default chunk).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mlmanager.engine.prediction.predictor import Predictor
from mlmanager.engine.prediction.table import predict_table
from mlmanager.engine.prediction.writing import ResultWriter

CHUNK_ROWS = 50_000


def predict_file(
    predictor: Predictor,
    source: Path,
    result: Path,
    *,
    result_format: str,
    keep: Iterable[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    each_chunk: Callable[[pa.RecordBatch], None] | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> int:
    """Predict the rows of the Parquet file `source` into `result` (`result_format`: csv or
    parquet, see `writing`); returns how many rows were predicted.

    The result holds the file's columns, then the prediction columns (`output_columns`);
    with `keep` (not None), of the file's columns only the predictor's inputs and those named,
    read from the file and nothing else. `progress(done, total)` is called between chunks
    (before the first and after each) with the rows predicted so far and the file's rows;
    raising from it stops the work (a cancelled job). `each_chunk` sees every chunk of input
    rows before it is predicted (to count unusual inputs, say).

    `result` is written in place: the caller writes to a temporary name and renames it when
    this returns (and removes it when this raises).
    """
    file = pq.ParquetFile(source)
    columns = None
    if keep is not None:
        wanted = set(predictor.inputs) | set(keep)
        columns = [name for name in file.schema_arrow.names if name in wanted]
    total = file.metadata.num_rows
    done = 0
    with ResultWriter(result, result_format) as writer:
        if progress is not None:
            progress(done, total)
        for chunk in file.iter_batches(batch_size=chunk_rows, columns=columns):
            if each_chunk is not None:
                each_chunk(chunk)
            writer.write(predict_table(predictor, pa.Table.from_batches([chunk])))
            done += chunk.num_rows
            if progress is not None:
                progress(done, total)
        if done == 0:  # a file with a header and no rows: the header alone
            empty = file.schema_arrow.empty_table()
            writer.write(
                predict_table(predictor, empty if columns is None else empty.select(columns))
            )
    return done
