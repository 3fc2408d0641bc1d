"""Excel (.xlsx) input: the first sheet, streamed row by row through openpyxl.

An .xlsx is a zip archive, so its central directory is checked before anything is inflated
(zipfile stops inflating an entry at the size the directory declares). Rows and cells are
capped as they are read: the sheet's declared dimension comes from whatever program wrote the
file and is sometimes wrong (openpyxl's read-only documentation says so), so it only sizes the
progress bar.
"""

from __future__ import annotations

import datetime as dt
import logging
import zipfile
from pathlib import Path
from typing import Any

import openpyxl

from mlmanager.engine.ingest.context import ReadContext
from mlmanager.engine.ingest.errors import (
    IngestError,
    IngestReport,
    guarded,
    no_rows_error,
    too_many_columns_error,
)
from mlmanager.engine.ingest.naming import ColumnNamer
from mlmanager.engine.ingest.python_values import RowBuffer

logger = logging.getLogger(__name__)

# These limits are checked on the archive's central directory, before any entry is inflated.
ZIP_MAX_TOTAL_UNCOMPRESSED = 1 << 30
ZIP_MAX_COMPRESSION_RATIO = 100
ZIP_RATIO_MIN_ENTRY_SIZE = 10 << 20

_EXCEL_ERROR_VALUES = frozenset(
    {"#DIV/0!", "#N/A", "#NAME?", "#NULL!", "#NUM!", "#REF!", "#VALUE!", "#GETTING_DATA"}
)


def convert_excel(source: Path, context: ReadContext) -> IngestReport:
    _check_zip_bomb(source)
    # A file object rather than the path: openpyxl refuses paths whose extension is not .xlsx,
    # and content detection may have found a workbook behind another name.
    with source.open("rb") as file:
        try:
            workbook = openpyxl.load_workbook(file, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds (KeyError, XML errors) for bad files
            raise _corrupt_excel_error(exc) from exc
        try:
            return _read_first_sheet(workbook, context)
        finally:
            workbook.close()


def _check_zip_bomb(path: Path) -> None:
    """Refuse archives that would inflate to absurd sizes, judging by the central directory."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise _corrupt_excel_error(exc) from exc
    total = sum(entry.file_size for entry in entries)
    suspicious = [
        entry
        for entry in entries
        if entry.file_size > ZIP_RATIO_MIN_ENTRY_SIZE
        and entry.file_size > ZIP_MAX_COMPRESSION_RATIO * max(entry.compress_size, 1)
    ]
    if total > ZIP_MAX_TOTAL_UNCOMPRESSED or suspicious:
        logger.warning(
            "refusing xlsx %s: %s bytes uncompressed, suspicious entries %s",
            path,
            total,
            [entry.filename for entry in suspicious],
        )
        raise IngestError(
            "This Excel file would expand to an unreasonable size when opened, so it was "
            "refused. Save it again from Excel, or export the sheet as CSV.",
            code="zip_bomb",
        )
    if not any(entry.filename.startswith("xl/") for entry in entries):
        raise _corrupt_excel_error(ValueError("no xl/ entries"))


def _corrupt_excel_error(exc: Exception) -> IngestError:
    logger.info("corrupt xlsx: %r", exc)
    return IngestError(
        "This Excel file is damaged or is not really an .xlsx workbook. Open it in Excel and "
        "save it again, or export the sheet as CSV.",
        code="corrupt_excel",
    )


def _read_first_sheet(workbook: Any, context: ReadContext) -> IngestReport:
    if not workbook.worksheets:
        raise IngestError("The workbook has no sheets.", code="empty_file")
    sheet = workbook.worksheets[0]
    rows = guarded(
        iter(sheet.iter_rows(values_only=True)),
        _corrupt_excel_error,
        Exception,  # openpyxl's parse errors have no common base class
    )
    header: list[Any] | None = None
    for row in rows:
        if any(_is_present(value) for value in row):
            header = list(row)
            break
    if header is None:
        raise IngestError("The first sheet of the workbook is empty.", code="empty_file")
    while header and not _is_present(header[-1]):
        header.pop()
    if len(header) > context.max_columns:
        raise too_many_columns_error(len(header), context.max_columns)

    namer = ColumnNamer()
    namer.add(["" if value is None else _cell_text(value) for value in header])
    buffer = RowBuffer(context, namer, width=len(header))
    error_cells = 0
    rows_read = 0
    total_rows = max(sheet.max_row or 0, 1)
    for row in rows:
        rows_read += 1
        if not any(_is_present(value) for value in row):
            continue
        if len(row) > buffer.width and any(_is_present(v) for v in row[buffer.width :]):
            # Data right of the last named column still gets a column rather than being lost.
            last = max(i for i, value in enumerate(row) if _is_present(value))
            if last + 1 > context.max_columns:
                raise too_many_columns_error(last + 1, context.max_columns)
            added = last + 1 - buffer.width
            namer.add([""] * added)
            buffer.add_columns(added)
        values = []
        for index in range(buffer.width):
            value = row[index] if index < len(row) else None
            if isinstance(value, str) and value in _EXCEL_ERROR_VALUES:
                error_cells += 1
                value = None
            values.append(value)
        buffer.append(values, share_read=rows_read / total_rows)
    buffer.finish()
    if context.sink.rows == 0:
        raise no_rows_error()

    notes = namer.notes()
    if len(workbook.worksheets) > 1:
        notes.append(
            f"Read the first sheet, “{sheet.title}”; the workbook has "
            f"{len(workbook.worksheets)} sheets."
        )
    if error_cells:
        noun = "cell" if error_cells == 1 else "cells"
        notes.append(f"Treated {error_cells:,} Excel error {noun} (such as #DIV/0!) as missing.")
    return context.report("excel", namer, notes=notes)


def _is_present(value: object) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def _cell_text(value: object) -> str:
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)
