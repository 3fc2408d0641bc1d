"""What the entry point hands every format's reader: where to write, the column limit,
progress reporting and cancellation."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from mlmanager.engine.ingest.errors import IngestError, IngestReport
from mlmanager.engine.ingest.naming import ColumnNamer
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
        )
