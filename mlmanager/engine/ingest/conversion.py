"""The entry point: detect the format, hand the file to its reader, write Parquet atomically."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from mlmanager.engine.ingest.context import Progress, ReadContext
from mlmanager.engine.ingest.csv import convert_csv
from mlmanager.engine.ingest.detection import detect_format
from mlmanager.engine.ingest.errors import IngestReport
from mlmanager.engine.ingest.excel import convert_excel
from mlmanager.engine.ingest.jsonl import convert_jsonl
from mlmanager.engine.ingest.parquet import convert_parquet
from mlmanager.engine.ingest.retype import convert_columns_to_numbers
from mlmanager.engine.ingest.writer import atomic_parquet_file

logger = logging.getLogger(__name__)

MAX_COLUMNS = 10_000


def convert_to_parquet(
    source: Path,
    destination: Path,
    *,
    original_name: str,
    max_columns: int = MAX_COLUMNS,
    max_rows: int | None = None,
    max_cells: int | None = None,
    on_progress: Callable[[float], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> IngestReport:
    """Stream `source` into a Parquet file at `destination` and report what was found.

    The file is written under a temporary sibling name and moved into place only when complete;
    on any error the temporary file is removed and nothing new appears at `destination`.
    `on_progress` receives the share (0.0-1.0) of the input read; `should_cancel` is polled
    between chunks and makes the conversion raise IngestError(code="cancelled").
    A file with more than `max_rows` rows or `max_cells` cells (rows × columns; None: no cap)
    raises IngestError(code="too_many_rows" or "too_many_cells"): Parquet from its footer
    before any row is read, the other formats at the first batch past the cap.
    """
    source = Path(source)
    destination = Path(destination)
    source_format = detect_format(source, original_name)
    progress = Progress(on_progress)
    with atomic_parquet_file(destination) as sink:
        context = ReadContext(
            sink=sink,
            max_columns=max_columns,
            progress=progress,
            should_cancel=should_cancel,
            max_rows=max_rows,
            max_cells=max_cells,
        )
        if source_format == "csv":
            extension = Path(original_name).suffix.lower()
            report = convert_csv(source, context, extension=extension)
        elif source_format == "parquet":
            report = convert_parquet(source, context)
        elif source_format == "excel":
            report = convert_excel(source, context)
        else:
            report = convert_jsonl(source, context)
    _store_numeric_text_as_numbers(destination, context, report)
    progress(1.0)
    logger.info(
        "converted %s (%s): %s rows, %s columns",
        original_name,
        source_format,
        report.row_count,
        report.column_count,
    )
    return report


def _store_numeric_text_as_numbers(
    destination: Path, context: ReadContext, report: IngestReport
) -> None:
    """Store as numbers the text columns that hold only numbers and missing-value tokens, and
    put the tokens found and these conversions in the report.

    Text files have no types, so there a column of grouped thousands ("1.234,5") qualifies too;
    in typed formats a text column without tokens is text on purpose (codes such as "007")."""
    scan = context.missing_values
    numeric = scan.numeric_text_columns(also_without_tokens=report.source_format == "csv")
    conversions = convert_columns_to_numbers(destination, numeric, context.number_format)
    report.missing_tokens = scan.missing_tokens(set(conversions))
    report.conversions = [
        {
            "column": name,
            "type": "integer" if numeric[name] else "numeric",
            "source": "reading",
            **conversion.to_dict(),
            # Most tokens became missing before the conversion saw them: name them all.
            "missing_tokens": report.missing_tokens.get(name, {}),
        }
        for name, conversion in conversions.items()
    ]
