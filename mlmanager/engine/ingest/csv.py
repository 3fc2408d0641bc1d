"""Delimited text (CSV, TSV, ...) streamed through pyarrow's block reader.

pyarrow guesses column types from the first block, cannot parse a row longer than a block, and
refuses rows with the wrong number of fields. The first two are handled by reading the file
again with wider types or larger blocks; wrong-sized rows are skipped and counted.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv

from mlmanager.engine.ingest.context import ReadContext
from mlmanager.engine.ingest.csv_dialect import (
    CsvDialect,
    header_only_trailing_delimiter_names,
    read_header,
    sniff_dialect,
    trailing_delimiter_names,
)
from mlmanager.engine.ingest.csv_stream import Utf8Reader
from mlmanager.engine.ingest.detection import read_text_sample
from mlmanager.engine.ingest.errors import (
    IngestError,
    IngestReport,
    no_rows_error,
    too_many_columns_error,
)
from mlmanager.engine.ingest.naming import ColumnNamer
from mlmanager.engine.ingest.values import MissingValueScan, NumberFormat

logger = logging.getLogger(__name__)

# pyarrow cannot parse a row longer than its block, so the block size also bounds a field's
# size; a file with a bigger row is retried with blocks four times larger up to the maximum.
CSV_BLOCK_SIZE = 16 << 20
CSV_MAX_BLOCK_SIZE = 64 << 20
# Column types come from the first block; a column that fails to convert later is re-read with
# a wider type. After this many re-reads every column is read as text in one last pass.
CSV_MAX_TYPE_RETRIES = 10
# pyarrow reads up to 32 blocks ahead of the batches taken from it, which at 16 MB blocks is
# half a gigabyte; the input stream holds it to this many blocks ahead instead.
CSV_READAHEAD_BLOCKS = 4

# The column for the empty field a trailing delimiter adds to every row. NULs are removed from
# the input, so no header name can be this.
_TRAILING_FIELD = "\x00trailing field"

_CONVERSION_ERROR = re.compile(
    r"In CSV column #(?P<index>\d+): CSV conversion error to (?P<type>[^:]+): "
    r"invalid value '(?P<value>.*)'",
    re.DOTALL,
)


class _RowTooLarge(Exception):
    pass


class _ColumnTypeMismatch(Exception):
    def __init__(self, column_name: str, widened_type: pa.DataType):
        super().__init__(column_name, widened_type)
        self.column_name = column_name
        self.widened_type = widened_type


class _TrailingFieldNotEmpty(Exception):
    pass


@dataclasses.dataclass
class _Attempt:
    """How to read the file this time; a failed read changes one of these for the next."""

    block_size: int
    # Set when every row ends with a delimiter: the header's names without an empty last one.
    trailing_names: list[str] | None
    # Set when only the header ends with a delimiter: the names to give the columns instead.
    header_names: list[str] | None = None
    column_types: dict[str, pa.DataType] = dataclasses.field(default_factory=dict)
    all_text: bool = False
    type_retries: int = 0


@dataclasses.dataclass
class _Outcome:
    skipped_rows: int
    original_names: list[str]
    stream: Utf8Reader


def convert_csv(source: Path, context: ReadContext, *, extension: str) -> IngestReport:
    sample = read_text_sample(source)
    dialect = sniff_dialect(sample, extension)
    context.missing_values = MissingValueScan(
        NumberFormat(dialect.decimal_point, dialect.thousands_separator)
    )
    header = read_header(source, dialect, context.max_columns)
    trailing_names = trailing_delimiter_names(header, sample, dialect)
    header_names = (
        header_only_trailing_delimiter_names(header, sample, dialect)
        if trailing_names is None
        else None
    )
    # The empty field a trailing delimiter adds is not a column, so it is not counted.
    columns = trailing_names or header_names or header
    if columns is not None and len(columns) > context.max_columns:
        raise too_many_columns_error(len(columns), context.max_columns)

    attempt = _Attempt(
        block_size=CSV_BLOCK_SIZE, trailing_names=trailing_names, header_names=header_names
    )
    while True:
        context.check_cancelled()
        try:
            outcome = _read_csv_once(source, context, dialect, attempt)
            break
        except _RowTooLarge:
            context.restart()
            if attempt.block_size * 4 > CSV_MAX_BLOCK_SIZE:
                raise IngestError(
                    f"A row of the file is larger than {CSV_MAX_BLOCK_SIZE >> 20} MB, which is "
                    "more than can be loaded. Check for an unclosed quote.",
                    code="row_too_large",
                ) from None
            attempt.block_size *= 4
            logger.info("csv %s: retrying with %s-byte blocks", source, attempt.block_size)
        except _ColumnTypeMismatch as mismatch:
            context.restart()
            _widen_for_retry(attempt, mismatch)
            logger.info(
                "csv %s: re-reading with column %r as %s",
                source,
                mismatch.column_name,
                "text (all columns)" if attempt.all_text else mismatch.widened_type,
            )
        except _TrailingFieldNotEmpty:
            # The sample misled: some row has data after its last delimiter, so the file is read
            # as it stands, with the header's fields as columns, rather than losing that data.
            context.restart()
            attempt.trailing_names = None
            logger.info("csv %s: a trailing field has data; re-reading without dropping it", source)

    if context.sink.rows == 0:
        raise no_rows_error(outcome.skipped_rows)
    return _report(context, dialect, attempt, outcome)


def _widen_for_retry(attempt: _Attempt, mismatch: _ColumnTypeMismatch) -> None:
    if attempt.all_text:  # text cannot fail to convert; refuse rather than retry for ever
        raise IngestError(
            "This file could not be read as a table.", code="invalid_file"
        ) from mismatch
    attempt.type_retries += 1
    if attempt.type_retries > CSV_MAX_TYPE_RETRIES:
        attempt.all_text = True
        attempt.column_types.clear()
    else:
        attempt.column_types[mismatch.column_name] = mismatch.widened_type


def _report(
    context: ReadContext, dialect: CsvDialect, attempt: _Attempt, outcome: _Outcome
) -> IngestReport:
    skipped_rows = outcome.skipped_rows
    notes: list[str] = []
    if skipped_rows:
        noun = "row" if skipped_rows == 1 else "rows"
        notes.append(f"Skipped {skipped_rows:,} {noun} with the wrong number of fields.")
    namer = ColumnNamer()
    namer.add(outcome.original_names)
    notes += namer.notes()
    if outcome.stream.removed_nul:
        notes.append("Removed NUL bytes.")
    if outcome.stream.replaced_characters:
        notes.append(
            f"Some characters could not be read as {dialect.encoding} and were replaced with "
            "“\ufffd”."
        )
    if attempt.all_text:
        notes.append(
            "Read every column as text because the kind of values changed further down the file."
        )
    for name, arrow_type in attempt.column_types.items():
        kind = "decimal numbers" if arrow_type == pa.float64() else "text"
        notes.append(
            f"Read column “{name}” as {kind} because values further down did not match the "
            "first rows."
        )
    return context.report(
        "csv",
        namer,
        notes=notes,
        encoding=dialect.encoding,
        delimiter=dialect.delimiter,
        skipped_rows=skipped_rows,
    )


def _read_csv_once(
    source: Path, context: ReadContext, dialect: CsvDialect, attempt: _Attempt
) -> _Outcome:
    skipped_rows = 0

    def skip_ragged_row(row: Any) -> str:
        nonlocal skipped_rows
        skipped_rows += 1
        return "skip"

    size = max(source.stat().st_size, 1)
    with source.open("rb") as raw:
        stream = Utf8Reader(
            raw, dialect.encoding, allow_until=CSV_READAHEAD_BLOCKS * attempt.block_size
        )
        try:
            try:
                reader = pa_csv.open_csv(
                    stream.buffered(), **_pyarrow_options(dialect, attempt, skip_ragged_row)
                )
            except pa.ArrowInvalid as exc:
                raise _classify_csv_error(exc, names=[], attempt=attempt) from exc
            reader_names = reader.schema.names
            trailing = attempt.trailing_names is not None
            original_names = reader_names[:-1] if trailing else reader_names
            if len(original_names) > context.max_columns:
                raise too_many_columns_error(len(original_names), context.max_columns)
            names = ColumnNamer().add(original_names)
            # pyarrow turns each block into one batch, empty or not, so batches count blocks.
            for batches_taken in itertools.count(1):
                context.check_cancelled()
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                except pa.ArrowInvalid as exc:
                    raise _classify_csv_error(exc, names=reader_names, attempt=attempt) from exc
                stream.allow((batches_taken + CSV_READAHEAD_BLOCKS) * attempt.block_size)
                columns = batch.columns
                if trailing and columns.pop().null_count != batch.num_rows:
                    raise _TrailingFieldNotEmpty
                context.write(pa.RecordBatch.from_arrays(columns, names=names))
                context.progress(stream.bytes_read / size)
        finally:
            stream.allow(None)  # never leave pyarrow's reading thread waiting
    return _Outcome(skipped_rows, original_names, stream)


def _pyarrow_options(
    dialect: CsvDialect, attempt: _Attempt, invalid_row_handler: Callable[[Any], str]
) -> dict[str, Any]:
    """pyarrow's read, parse and convert options for this attempt, as open_csv takes them."""
    read_options: dict[str, Any] = {"block_size": attempt.block_size}
    column_types = dict(attempt.column_types)
    if attempt.trailing_names is not None:
        # Naming the columns here, one more than the header has, gives each row's empty last
        # field a column to land in; the header line is then skipped rather than read for names.
        read_options["column_names"] = [*attempt.trailing_names, _TRAILING_FIELD]
        read_options["skip_rows"] = 1
        # As text any value fits, so data in that field is found rather than failing to convert.
        column_types[_TRAILING_FIELD] = pa.string()
    elif attempt.header_names is not None:
        read_options["column_names"] = attempt.header_names
        read_options["skip_rows"] = 1
    convert_options: dict[str, Any] = {
        "decimal_point": dialect.decimal_point,
        # Only empty fields are missing to pyarrow: the missing-value tokens ("NA", "?", ...)
        # are found, counted and taken as missing by ReadContext.write (values.MissingValueScan).
        "null_values": [""],
        "strings_can_be_null": True,
        "column_types": column_types,
    }
    if attempt.all_text:
        convert_options["default_column_type"] = pa.string()
    return {
        "read_options": pa_csv.ReadOptions(**read_options),
        "parse_options": pa_csv.ParseOptions(
            delimiter=dialect.delimiter,
            quote_char=dialect.quote_char,
            newlines_in_values=True,
            invalid_row_handler=invalid_row_handler,
        ),
        "convert_options": pa_csv.ConvertOptions(**convert_options),
    }


def _classify_csv_error(exc: pa.ArrowInvalid, *, names: list[str], attempt: _Attempt) -> Exception:
    message = str(exc)
    if "straddling object straddles two block boundaries" in message:
        return _RowTooLarge()
    if "Empty CSV file or block" in message:
        return no_rows_error()  # a header line without a line break after it
    match = _CONVERSION_ERROR.search(message)
    if match and int(match["index"]) < len(names):
        name = names[int(match["index"])]
        failed_type = match["type"]
        widened = pa.string()
        if failed_type in {"int64", "null"} and attempt.column_types.get(name) != pa.float64():
            try:
                float(match["value"].replace(",", "."))
            except ValueError:
                pass
            else:
                widened = pa.float64()
        return _ColumnTypeMismatch(name, widened)
    logger.info("unreadable csv: %s", message)
    return IngestError(f"This file could not be read as a table: {message}", code="invalid_file")
