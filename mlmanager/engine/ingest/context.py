"""What the entry point hands every format's reader: where to write, the size limits,
progress reporting and cancellation."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pyarrow as pa

from mlmanager.engine.ingest.errors import (
    IngestError,
    IngestReport,
    too_many_cells_error,
    too_many_rows_error,
)
from mlmanager.engine.ingest.naming import ColumnNamer
from mlmanager.engine.ingest.values import MissingValueScan, NumberFormat
from mlmanager.engine.ingest.writer import ParquetSink


class Progress:
    """Reports a non-decreasing share of work done; retries do not move the bar back."""

    def __init__(self, callback: Callable[[float], None] | None):
        self._callback = callback
        self._last = 0.0

    def __call__(self, share: float) -> None:
        share = min(max(share, self._last), 1.0)
        if self._callback is not None and share > self._last:
            self._callback(share)
        self._last = share


@dataclasses.dataclass
class ReadContext:
    """One conversion's settings and output, shared by the entry point and the format reader."""

    sink: ParquetSink
    max_columns: int
    progress: Progress
    should_cancel: Callable[[], bool] | None
    # None: no cap. Bytes do not bound rows: dictionary and run-length encoding let a Parquet
    # file of a few hundred KB hold tens of millions of rows.
    max_rows: int | None = None
    max_cells: int | None = None
    # Every batch passes through it; a text reader replaces it once it knows the number format.
    missing_values: MissingValueScan = dataclasses.field(default_factory=MissingValueScan)

    @property
    def number_format(self) -> NumberFormat:
        return self.missing_values.number_format

    def restart(self) -> None:
        """Forget everything written and found, to read the file again."""
        self.sink.reset()
        self.missing_values.reset()

    def check_declared_size(self, rows: int, columns: int) -> None:
        """Refuse a file whose metadata declares more rows or cells than the caps, before any
        row is read."""
        if self.max_rows is not None and rows > self.max_rows:
            raise too_many_rows_error(self.max_rows, count=rows)
        if self.max_cells is not None and rows * columns > self.max_cells:
            raise too_many_cells_error(self.max_cells, rows=rows, columns=columns)

    def write(self, batch: pa.RecordBatch) -> None:
        """Write `batch` to the sink unless it takes the file past a cap: every format writes
        through here, so a file without metadata stops at the first batch over the limit."""
        rows = self.sink.rows + batch.num_rows
        if self.max_rows is not None and rows > self.max_rows:
            raise too_many_rows_error(self.max_rows)
        if self.max_cells is not None and rows * batch.num_columns > self.max_cells:
            raise too_many_cells_error(self.max_cells)
        self.sink.write(self.missing_values.apply(batch))

    def check_cancelled(self) -> None:
        """Raise IngestError(code="cancelled") if the caller has asked to stop."""
        if self.should_cancel is not None and self.should_cancel():
            raise IngestError("The upload was cancelled.", code="cancelled")

    def report(
        self,
        source_format: str,
        namer: ColumnNamer,
        *,
        notes: list[str],
        encoding: str | None = None,
        delimiter: str | None = None,
        skipped_rows: int = 0,
    ) -> IngestReport:
        """Report what was written: the rows in the sink and the columns `namer` named."""
        return IngestReport(
            source_format=source_format,
            row_count=self.sink.rows,
            column_count=len(namer.names),
            encoding=encoding,
            delimiter=delimiter,
            skipped_rows=skipped_rows,
            renamed_columns=namer.renamed,
            notes=notes,
            decimal_separator=self.number_format.decimal_separator,
            thousands_separator=self.number_format.thousands_separator,
        )
