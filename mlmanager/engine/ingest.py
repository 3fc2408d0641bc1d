"""Turn an uploaded table (CSV/TSV, Parquet, Excel, JSON Lines) into one normalised Parquet file.

Every reader streams: CSV through pyarrow's block reader, JSON Lines and Excel row by row in
batches, Parquet batch by batch, so memory stays bounded whatever the size of the upload.
Problems with the user's file surface as `IngestError`, whose message is meant for the user.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import datetime as dt
import io
import itertools
import json
import logging
import math
import os
import re
import string
import tempfile
import threading
import unicodedata
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import charset_normalizer
import openpyxl
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

logger = logging.getLogger(__name__)

SUPPORTED_EXTENSIONS = {".csv", ".tsv", ".txt", ".parquet", ".xlsx", ".jsonl", ".ndjson"}
MAX_COLUMNS = 10_000

# Encoding, dialect and format are guessed from the start of the file only.
SAMPLE_BYTES = 1 << 20
# csv.Sniffer slows down badly on long input, and a few dozen lines settle the dialect.
SNIFF_MAX_CHARS = 64 * 1024
SNIFF_MAX_LINES = 50
DELIMITER_CANDIDATES = ",;\t|"
# A header line longer than this is not a table anyone can use; stop looking for its end.
HEADER_MAX_CHARS = 16 << 20

# Share of NUL bytes above which a sample is binary rather than text with stray NULs.
BINARY_NUL_SHARE = 0.30
# Share of other control bytes (NULs removed) above which a sample is binary: random bytes
# have about 11 %, text almost none.
BINARY_CONTROL_SHARE = 0.05
# Western text decoded as Windows-1252 has few accented letters, whereas Cyrillic or Greek text
# from a single-byte code page decodes to almost nothing but accented Latin letters.
WESTERN_MAX_ACCENTED_SHARE = 0.30

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
# Should pyarrow ever wait for input the throttle holds back, stop throttling rather than stall.
CSV_THROTTLE_TIMEOUT_SECONDS = 5.0

ROW_GROUP_ROWS = 100_000
# Wide tables reach this long before the row limit; it bounds the write buffer.
ROW_GROUP_MAX_BYTES = 64 << 20
# Excel and JSON Lines rows are converted to Arrow this many at a time.
BATCH_ROWS = 10_000
# Text decoded per read when re-encoding CSV for pyarrow.
STREAM_CHUNK_BYTES = 1 << 20

# An .xlsx is a zip archive; these limits are checked on its central directory, before any
# entry is inflated.
ZIP_MAX_TOTAL_UNCOMPRESSED = 1 << 30
ZIP_MAX_COMPRESSION_RATIO = 100
ZIP_RATIO_MIN_ENTRY_SIZE = 10 << 20

_PARQUET_MAGIC = b"PAR1"
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .xls / .doc
# Only signatures that cannot start a text file; other binaries are caught by byte statistics.
_BINARY_SIGNATURES = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"GIF87a",
    b"GIF89a",
    b"%PDF-",
    b"\x7fELF",
    b"\x1f\x8b",
    b"7z\xbc\xaf\x27\x1c",
    b"Rar!\x1a\x07",
    b"\xfd7zXZ\x00",
    b"\x28\xb5\x2f\xfd",
    b"SQLite format 3\x00",
    b"\xcf\xfa\xed\xfe",
    b"\xfe\xed\xfa\xcf",
)
_CONTROL_BYTES = bytes([*range(0x01, 0x09), *range(0x0E, 0x1A), *range(0x1C, 0x20), 0x7F])
_EXCEL_ERROR_VALUES = frozenset(
    {"#DIV/0!", "#N/A", "#NAME?", "#NULL!", "#NUM!", "#REF!", "#VALUE!", "#GETTING_DATA"}
)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class IngestError(Exception):
    """A problem with the user's file, with a message a non-programmer understands."""

    def __init__(self, message: str, *, code: str = "invalid_file"):
        super().__init__(message)
        self.message = message
        self.code = code


@dataclasses.dataclass
class IngestReport:
    """What the conversion found and changed, for showing next to the data set."""

    source_format: str
    row_count: int
    column_count: int
    encoding: str | None
    delimiter: str | None
    skipped_rows: int = 0
    renamed_columns: dict[str, str] = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# --- format and encoding detection ---------------------------------------------------------


def detect_format(path: Path, original_name: str) -> str:
    """Return "csv", "parquet", "excel" or "jsonl" for the file at `path`.

    The content decides first (Parquet and zip magic, one JSON object per line); the extension of
    `original_name` decides for files whose content is damaged, so that a truncated .parquet is
    reported as a corrupt Parquet file rather than as unreadable text.
    """
    path = Path(path)
    extension = Path(original_name).suffix.lower()
    size = path.stat().st_size
    if size == 0:
        raise IngestError("The file is empty.", code="empty_file")
    with path.open("rb") as file:
        sample = file.read(SAMPLE_BYTES)

    if sample.startswith(_PARQUET_MAGIC):
        return "parquet"
    if sample.startswith(_ZIP_MAGIC):
        if _zip_has_excel_entries(path) or extension == ".xlsx":
            return "excel"
        raise IngestError(
            "This is a ZIP archive, not a table. Upload the CSV, Excel or Parquet file inside it.",
            code="unsupported_format",
        )
    if sample.startswith(_OLE_MAGIC):
        raise IngestError(
            "Old Excel files (.xls) are not supported. Save the sheet as .xlsx or CSV and "
            "upload that.",
            code="unsupported_format",
        )
    if sample.startswith(_BINARY_SIGNATURES):
        raise _binary_file_error()
    if extension == ".parquet":
        return "parquet"
    if extension == ".xlsx":
        return "excel"
    if extension not in SUPPORTED_EXTENSIONS:
        supported = ", ".join(sorted(SUPPORTED_EXTENSIONS))
        raise IngestError(
            f"Files of type “{extension or 'without extension'}” are not supported. "
            f"Upload one of: {supported}.",
            code="unsupported_format",
        )

    complete = size <= len(sample)
    encoding = _detect_encoding(sample, complete=complete)
    text = _decode_sample(sample, encoding, complete=complete)
    if not text.strip() and (complete or _is_blank_file(path, encoding)):
        raise IngestError("The file is empty.", code="empty_file")
    if extension in {".jsonl", ".ndjson"} or _looks_like_json_lines(text):
        return "jsonl"
    return "csv"


def _binary_file_error() -> IngestError:
    return IngestError(
        "This file is not a text table: it looks like a binary file (for example an image or "
        "a program) with a table's file name. Upload a CSV, Excel, Parquet or JSON Lines file.",
        code="binary_file",
    )


def _zip_has_excel_entries(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.startswith("xl/") for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _detect_encoding(sample: bytes, *, complete: bool) -> str:
    """Name the text encoding of `sample`, or raise binary_file if it is not text."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    utf16 = _guess_utf16_without_bom(sample)
    if utf16:
        return utf16
    if sample.count(0) > BINARY_NUL_SHARE * len(sample):
        raise _binary_file_error()
    text_bytes = sample.replace(b"\x00", b"")
    control_count = len(text_bytes) - len(text_bytes.translate(None, _CONTROL_BYTES))
    if control_count > BINARY_CONTROL_SHARE * max(len(text_bytes), 1):
        raise _binary_file_error()
    try:
        codecs.getincrementaldecoder("utf-8")().decode(text_bytes, final=complete)
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8"
    if _looks_like_western_text(text_bytes):
        return "cp1252"
    best = charset_normalizer.from_bytes(text_bytes).best()
    if best is None:
        raise _binary_file_error()
    return codecs.lookup(best.encoding).name


def _guess_utf16_without_bom(sample: bytes) -> str | None:
    # ASCII-range text in UTF-16 has a NUL in every other byte, on one side only.
    if len(sample) < 8:
        return None
    even_nul = sample[0::2].count(0) / len(sample[0::2])
    odd_nul = sample[1::2].count(0) / len(sample[1::2])
    if odd_nul > 0.4 and even_nul < 0.05:
        candidate = "utf-16-le"
    elif even_nul > 0.4 and odd_nul < 0.05:
        candidate = "utf-16-be"
    else:
        return None
    try:
        codecs.getincrementaldecoder(candidate)().decode(sample, final=False)
    except UnicodeDecodeError:
        return None
    return candidate


def _looks_like_western_text(text_bytes: bytes) -> bool:
    try:
        text = text_bytes.decode("cp1252")
    except UnicodeDecodeError:
        return False
    accented_letters = 0
    for character in {c for c in text if ord(c) > 127}:
        category = unicodedata.category(character)
        if category.startswith("C"):
            return False
        if category.startswith("L"):
            if "LATIN" not in unicodedata.name(character, ""):
                return False
            accented_letters += text.count(character)
    ascii_letters = sum(text.count(c) for c in string.ascii_letters)
    return accented_letters <= WESTERN_MAX_ACCENTED_SHARE * max(ascii_letters + accented_letters, 1)


def _decode_sample(sample: bytes, encoding: str, *, complete: bool) -> str:
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    return decoder.decode(sample, final=complete).replace("\x00", "")


def _is_blank_file(path: Path, encoding: str) -> bool:
    with path.open("rb") as raw:
        stream = io.TextIOWrapper(raw, encoding=encoding, errors="replace")
        while chunk := stream.read(SAMPLE_BYTES):
            if chunk.replace("\x00", "").strip():
                return False
    return True


def _looks_like_json_lines(text: str) -> bool:
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if not first_line.startswith("{"):
        return False
    try:
        return isinstance(json.loads(first_line), dict)
    except (ValueError, RecursionError):
        return False


# --- column names ----------------------------------------------------------------------------


class _ColumnNamer:
    """Makes column names unique and non-empty, remembering what it renamed.

    Names arrive all at once (CSV, Parquet, the Excel header) or a few at a time as new keys
    appear (JSON Lines, Excel cells right of the header), hence the incremental interface.
    """

    def __init__(self) -> None:
        self.names: list[str] = []
        self.renamed: dict[str, str] = {}
        self.renamed_count = 0
        self._taken: set[str] = set()

    def add(self, originals: list[str]) -> list[str]:
        # Names that are fine keep them even when an earlier empty column would be renamed to
        # the same text, so reserve them before renaming anything.
        keep: set[int] = set()
        for index, original in enumerate(originals):
            if original.strip() and original not in self._taken:
                keep.add(index)
                self._taken.add(original)
        added = []
        for index, original in enumerate(originals):
            if index in keep:
                name = original
            else:
                name = self._rename(original, position=len(self.names) + index + 1)
            added.append(name)
        self.names.extend(added)
        return added

    def _rename(self, original: str, *, position: int) -> str:
        base = original if original.strip() else f"column_{position}"
        name = base
        suffix = 2
        while name in self._taken:
            name = f"{base}_{suffix}"
            suffix += 1
        self._taken.add(name)
        # One original that occurs three times has two new names; the first one is kept.
        self.renamed.setdefault(original, name)
        self.renamed_count += 1
        return name

    def notes(self) -> list[str]:
        if not self.renamed_count:
            return []
        noun = "name" if self.renamed_count == 1 else "names"
        return [f"Renamed {self.renamed_count} duplicate or empty column {noun}."]


def _too_many_columns_error(count: int, max_columns: int) -> IngestError:
    return IngestError(
        f"The file has {count:,} columns; at most {max_columns:,} are supported.",
        code="too_many_columns",
    )


# --- Parquet output --------------------------------------------------------------------------


def _widen_type(current: pa.DataType, incoming: pa.DataType) -> pa.DataType:
    if current == incoming or pa.types.is_null(incoming):
        return current
    if pa.types.is_null(current):
        return incoming
    numeric = {pa.int64(), pa.float64()}
    if current in numeric and incoming in numeric:
        return pa.float64()
    return pa.string()


def _widen_schema(current: pa.Schema, incoming: pa.Schema) -> pa.Schema:
    incoming_types = {field.name: field.type for field in incoming}
    fields = [
        pa.field(field.name, _widen_type(field.type, incoming_types.get(field.name, pa.null())))
        for field in current
    ]
    fields += [field for field in incoming if field.name not in set(current.names)]
    return pa.schema(fields)


def _conform(table: pa.Table | pa.RecordBatch, schema: pa.Schema) -> pa.Table:
    columns = []
    for field in schema:
        if field.name in table.schema.names:
            column = table.column(field.name)
            columns.append(column if column.type == field.type else column.cast(field.type))
        else:
            columns.append(pa.nulls(table.num_rows, field.type))
    return pa.Table.from_arrays(columns, schema=schema)


class _ParquetSink:
    """Writes record batches to one Parquet file in row groups of ROW_GROUP_ROWS.

    JSON Lines and Excel have no schema up front, so a batch may bring a new column or a value
    that does not fit a column's type; the sink then widens the schema (int to float, anything
    mixed to text) and rewrites what it has written so far. That is rare and happens early.
    """

    def __init__(self, path: Path):
        self.path = path
        self.schema: pa.Schema | None = None
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._pending_bytes = 0

    def write(self, batch: pa.RecordBatch) -> None:
        table = pa.Table.from_batches([batch])
        if self.schema is None:
            self.schema = table.schema
        elif not table.schema.equals(self.schema):
            widened = _widen_schema(self.schema, table.schema)
            if not widened.equals(self.schema):
                self._migrate(widened)
            table = _conform(table, widened)
        self._pending.append(table)
        self._pending_rows += table.num_rows
        self._pending_bytes += table.nbytes
        self.rows += table.num_rows
        if self._pending_rows >= ROW_GROUP_ROWS or self._pending_bytes >= ROW_GROUP_MAX_BYTES:
            # Past the byte limit everything goes out, even a row group shorter than the rest.
            self._flush(everything=self._pending_bytes >= ROW_GROUP_MAX_BYTES)

    def close(self) -> None:
        self._flush(everything=True)
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def abort(self) -> None:
        if self._writer is not None:
            try:
                self._writer.close()
            except (OSError, pa.ArrowException):
                logger.warning("could not close parquet writer for %s", self.path, exc_info=True)
            self._writer = None
        self._pending.clear()

    def reset(self) -> None:
        """Forget everything written, to start the conversion over."""
        self.abort()
        self.path.unlink(missing_ok=True)
        self.schema = None
        self.rows = self._pending_rows = self._pending_bytes = 0

    def _flush(self, *, everything: bool) -> None:
        if not self._pending:
            return
        assert self.schema is not None
        table = pa.concat_tables(self._pending)
        self._pending.clear()
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, self.schema)
        while table.num_rows >= ROW_GROUP_ROWS or (everything and table.num_rows):
            self._writer.write_table(table.slice(0, ROW_GROUP_ROWS), row_group_size=ROW_GROUP_ROWS)
            table = table.slice(ROW_GROUP_ROWS)
        if table.num_rows:
            self._pending.append(table)
        self._pending_rows = table.num_rows
        self._pending_bytes = table.nbytes

    def _migrate(self, schema: pa.Schema) -> None:
        self._pending = [_conform(table, schema) for table in self._pending]
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            previous = self.path.with_name(self.path.name + ".previous")
            os.replace(self.path, previous)
            try:
                writer = pq.ParquetWriter(self.path, schema)
                written = pq.ParquetFile(previous)
                for index in range(written.num_row_groups):
                    writer.write_table(_conform(written.read_row_group(index), schema))
                self._writer = writer
            finally:
                previous.unlink(missing_ok=True)
        self.schema = schema


class _Progress:
    """Reports a non-decreasing share of work done; retries do not move the bar back."""

    def __init__(self, callback: Callable[[float], None] | None):
        self._callback = callback
        self._last = 0.0

    def __call__(self, share: float) -> None:
        share = min(max(share, self._last), 1.0)
        if self._callback is not None and share > self._last:
            self._callback(share)
        self._last = share


def _check_cancelled(should_cancel: Callable[[], bool] | None) -> None:
    if should_cancel is not None and should_cancel():
        raise IngestError("The upload was cancelled.", code="cancelled")


def _no_rows_error(skipped_rows: int = 0) -> IngestError:
    if skipped_rows:
        return IngestError(
            f"None of the {skipped_rows:,} data rows has the same number of fields as the "
            "header, so there is nothing to load.",
            code="no_rows",
        )
    return IngestError("The file has column names but no data rows.", code="no_rows")


_Item = TypeVar("_Item")


def _guarded(
    iterator: Iterator[_Item],
    to_error: Callable[[Exception], IngestError],
    *errors: type[Exception],
) -> Iterator[_Item]:
    """Yield from `iterator`, turning the reader's own errors into IngestError.

    Only the reading is guarded, so an error while writing is never blamed on the file.
    """
    while True:
        try:
            item = next(iterator)
        except StopIteration:
            return
        except errors as exc:
            raise to_error(exc) from exc
        yield item


# --- CSV -------------------------------------------------------------------------------------


class _Utf8Reader(io.RawIOBase):
    """Re-encodes a text file to UTF-8 on the fly for pyarrow, dropping NUL characters.

    pyarrow's own transcoding stops at the first undecodable byte; decoding here with
    errors="replace" means one stray byte cannot reject a whole file. The reader also counts
    the bytes read, for progress, and holds pyarrow's background reading to `allow_until`
    bytes of output so that read-ahead cannot fill memory.
    """

    def __init__(self, raw: io.BufferedReader, encoding: str, *, allow_until: int | None):
        self._raw = raw
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        self._buffer = b""
        self._position = 0
        self._end_of_file = False
        self._delivered = 0
        self._allow_until = allow_until
        self._throttle = threading.Condition()
        self.bytes_read = 0
        self.removed_nul = False
        self.replaced_characters = False

    def readable(self) -> bool:
        return True

    def allow(self, until: int | None) -> None:
        """Let the consumer read up to `until` bytes of output in total (None: no limit)."""
        with self._throttle:
            self._allow_until = until
            self._throttle.notify_all()

    def readinto(self, target) -> int:  # type: ignore[no-untyped-def]
        self._wait_for_allowance()
        while self._position >= len(self._buffer):
            if self._end_of_file:
                return 0
            self._fill()
        count = min(len(target), len(self._buffer) - self._position)
        target[:count] = self._buffer[self._position : self._position + count]
        self._position += count
        self._delivered += count
        return count

    def _wait_for_allowance(self) -> None:
        with self._throttle:
            allowed = self._throttle.wait_for(
                lambda: self._allow_until is None or self._delivered < self._allow_until,
                timeout=CSV_THROTTLE_TIMEOUT_SECONDS,
            )
            if not allowed:
                logger.warning(
                    "csv reader stalled at %s bytes; reading on unthrottled", self._delivered
                )
                self._allow_until = None

    def _fill(self) -> None:
        raw = self._raw.read(STREAM_CHUNK_BYTES)
        self.bytes_read += len(raw)
        if raw:
            text = self._decoder.decode(raw)
        else:
            text = self._decoder.decode(b"", final=True)
            self._end_of_file = True
        if "\x00" in text:
            text = text.replace("\x00", "")
            self.removed_nul = True
        if "\ufffd" in text:
            self.replaced_characters = True
        self._buffer = text.encode("utf-8")
        self._position = 0


@dataclasses.dataclass
class _CsvDialect:
    encoding: str
    delimiter: str
    quote_char: str
    decimal_point: str


class _RowTooLarge(Exception):
    pass


class _ColumnTypeMismatch(Exception):
    def __init__(self, column_name: str, widened_type: pa.DataType):
        super().__init__(column_name, widened_type)
        self.column_name = column_name
        self.widened_type = widened_type


class _LineTooLong(Exception):
    pass


_CONVERSION_ERROR = re.compile(
    r"In CSV column #(?P<index>\d+): CSV conversion error to (?P<type>[^:]+): "
    r"invalid value '(?P<value>.*)'",
    re.DOTALL,
)
_COMMA_DECIMAL = re.compile(r"[-+]?\d+,\d+")
_DOT_DECIMAL = re.compile(r"[-+]?\d*\.\d+")


def _sniff_dialect(text: str, extension: str) -> tuple[str, str]:
    lines = list(itertools.islice(io.StringIO(text[:SNIFF_MAX_CHARS]), SNIFF_MAX_LINES))
    if len(lines) > 1 and not lines[-1].endswith(("\n", "\r")):
        lines.pop()  # cut off by the sample
    first_line = lines[0] if lines else ""
    if extension == ".tsv" and "\t" in first_line:
        return "\t", '"'
    try:
        sniffed = csv.Sniffer().sniff("".join(lines), delimiters=DELIMITER_CANDIDATES)
        delimiter, quote_char = sniffed.delimiter, sniffed.quotechar
    except csv.Error:
        delimiter, quote_char = "", '"'
    if delimiter not in DELIMITER_CANDIDATES or not delimiter:
        counts = {candidate: first_line.count(candidate) for candidate in DELIMITER_CANDIDATES}
        delimiter = max(counts, key=counts.__getitem__) if any(counts.values()) else ","
    if quote_char not in ('"', "'"):
        quote_char = '"'
    return delimiter, quote_char


def _sniff_decimal_point(text: str, delimiter: str, quote_char: str) -> str:
    # With a comma delimiter a decimal comma would have to be quoted; nobody does that.
    if delimiter == ",":
        return "."
    comma_numbers = dot_numbers = 0
    rows = csv.reader(
        io.StringIO(text[:SNIFF_MAX_CHARS]), delimiter=delimiter, quotechar=quote_char
    )
    try:
        for row in itertools.islice(rows, SNIFF_MAX_LINES):
            for field in row:
                value = field.strip()
                if _COMMA_DECIMAL.fullmatch(value):
                    comma_numbers += 1
                elif _DOT_DECIMAL.fullmatch(value):
                    dot_numbers += 1
    except csv.Error:
        pass  # a field longer than the csv module allows; the rows read so far decide
    return "," if comma_numbers > dot_numbers else "."


def _read_header_fields(source: Path, dialect: _CsvDialect, max_columns: int) -> int | None:
    """Count the header's fields without reading the body, or None if the csv module cannot."""
    with source.open("rb") as raw:
        text = io.TextIOWrapper(raw, encoding=dialect.encoding, errors="replace", newline="")

        def lines() -> Iterator[str]:
            while line := text.readline(HEADER_MAX_CHARS):
                if len(line) >= HEADER_MAX_CHARS and not line.endswith(("\n", "\r")):
                    if line.count(dialect.delimiter) + 1 > max_columns:
                        raise _too_many_columns_error(
                            line.count(dialect.delimiter) + 1, max_columns
                        )
                    raise _LineTooLong
                yield line.replace("\x00", "")

        reader = csv.reader(lines(), delimiter=dialect.delimiter, quotechar=dialect.quote_char)
        try:
            return len(next(reader, []))
        except _LineTooLong:
            raise IngestError(
                "The first line of the file is too long to be a header row.", code="invalid_file"
            ) from None
        except csv.Error:
            return None


def _convert_csv(
    source: Path,
    sink: _ParquetSink,
    *,
    extension: str,
    max_columns: int,
    progress: _Progress,
    should_cancel: Callable[[], bool] | None,
) -> IngestReport:
    size = source.stat().st_size
    with source.open("rb") as file:
        sample = file.read(SAMPLE_BYTES)
    complete = size <= len(sample)
    encoding = _detect_encoding(sample, complete=complete)
    text = _decode_sample(sample, encoding, complete=complete)
    delimiter, quote_char = _sniff_dialect(text, extension)
    dialect = _CsvDialect(
        encoding=encoding,
        delimiter=delimiter,
        quote_char=quote_char,
        decimal_point=_sniff_decimal_point(text, delimiter, quote_char),
    )
    header_fields = _read_header_fields(source, dialect, max_columns)
    if header_fields is not None and header_fields > max_columns:
        raise _too_many_columns_error(header_fields, max_columns)

    column_types: dict[str, pa.DataType] = {}
    all_text = False
    block_size = CSV_BLOCK_SIZE
    retries = 0
    while True:
        _check_cancelled(should_cancel)
        try:
            outcome = _read_csv_once(
                source,
                sink,
                dialect,
                column_types=column_types,
                all_text=all_text,
                block_size=block_size,
                max_columns=max_columns,
                on_share_read=progress,
                should_cancel=should_cancel,
            )
            break
        except _RowTooLarge:
            sink.reset()
            if block_size * 4 > CSV_MAX_BLOCK_SIZE:
                raise IngestError(
                    f"A row of the file is larger than {CSV_MAX_BLOCK_SIZE >> 20} MB, which is "
                    "more than can be loaded. Check for an unclosed quote.",
                    code="row_too_large",
                ) from None
            block_size *= 4
            logger.info("csv %s: retrying with %s-byte blocks", source, block_size)
        except _ColumnTypeMismatch as mismatch:
            sink.reset()
            if all_text:  # text cannot fail to convert; refuse rather than retry for ever
                raise IngestError(
                    "This file could not be read as a table.", code="invalid_file"
                ) from mismatch
            retries += 1
            if retries > CSV_MAX_TYPE_RETRIES:
                all_text = True
                column_types.clear()
            else:
                column_types[mismatch.column_name] = mismatch.widened_type
            logger.info(
                "csv %s: re-reading with column %r as %s",
                source,
                mismatch.column_name,
                "text (all columns)" if all_text else mismatch.widened_type,
            )

    skipped_rows, original_names, reader_state = outcome
    if sink.rows == 0:
        raise _no_rows_error(skipped_rows)

    report = IngestReport(
        source_format="csv",
        row_count=sink.rows,
        column_count=len(original_names),
        encoding=encoding,
        delimiter=delimiter,
        skipped_rows=skipped_rows,
    )
    if skipped_rows:
        noun = "row" if skipped_rows == 1 else "rows"
        report.notes.append(f"Skipped {skipped_rows:,} {noun} with the wrong number of fields.")
    namer = _ColumnNamer()
    namer.add(original_names)
    report.renamed_columns = namer.renamed
    report.notes += namer.notes()
    if reader_state.removed_nul:
        report.notes.append("Removed NUL bytes.")
    if reader_state.replaced_characters:
        report.notes.append(
            f"Some characters could not be read as {encoding} and were replaced with “\ufffd”."
        )
    if dialect.decimal_point == ",":
        report.notes.append("Read numbers with a decimal comma.")
    if all_text:
        report.notes.append(
            "Read every column as text because the kind of values changed further down the file."
        )
    for name, arrow_type in column_types.items():
        kind = "decimal numbers" if arrow_type == pa.float64() else "text"
        report.notes.append(
            f"Read column “{name}” as {kind} because values further down did not match the "
            "first rows."
        )
    return report


def _read_csv_once(
    source: Path,
    sink: _ParquetSink,
    dialect: _CsvDialect,
    *,
    column_types: dict[str, pa.DataType],
    all_text: bool,
    block_size: int,
    max_columns: int,
    on_share_read: Callable[[float], None],
    should_cancel: Callable[[], bool] | None,
) -> tuple[int, list[str], _Utf8Reader]:
    skipped_rows = 0

    def skip_ragged_row(row: Any) -> str:
        nonlocal skipped_rows
        skipped_rows += 1
        return "skip"

    convert_options: dict[str, Any] = {
        "decimal_point": dialect.decimal_point,
        "strings_can_be_null": True,
        "column_types": column_types,
    }
    if all_text:
        convert_options["default_column_type"] = pa.string()
    size = max(source.stat().st_size, 1)
    with source.open("rb") as raw:
        stream = _Utf8Reader(raw, dialect.encoding, allow_until=CSV_READAHEAD_BLOCKS * block_size)
        try:
            try:
                reader = pa_csv.open_csv(
                    io.BufferedReader(stream, buffer_size=STREAM_CHUNK_BYTES),
                    read_options=pa_csv.ReadOptions(block_size=block_size),
                    parse_options=pa_csv.ParseOptions(
                        delimiter=dialect.delimiter,
                        quote_char=dialect.quote_char,
                        newlines_in_values=True,
                        invalid_row_handler=skip_ragged_row,
                    ),
                    convert_options=pa_csv.ConvertOptions(**convert_options),
                )
            except pa.ArrowInvalid as exc:
                raise _classify_csv_error(exc, names=[], column_types=column_types) from exc
            original_names = reader.schema.names
            if len(original_names) > max_columns:
                raise _too_many_columns_error(len(original_names), max_columns)
            names = _ColumnNamer().add(original_names)
            # pyarrow turns each block into one batch, empty or not, so batches count blocks.
            for batches_taken in itertools.count(1):
                _check_cancelled(should_cancel)
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                except pa.ArrowInvalid as exc:
                    raise _classify_csv_error(
                        exc, names=original_names, column_types=column_types
                    ) from exc
                stream.allow((batches_taken + CSV_READAHEAD_BLOCKS) * block_size)
                sink.write(pa.RecordBatch.from_arrays(batch.columns, names=names))
                on_share_read(stream.bytes_read / size)
        finally:
            stream.allow(None)  # never leave pyarrow's reading thread waiting
    return skipped_rows, original_names, stream


def _classify_csv_error(
    exc: pa.ArrowInvalid, *, names: list[str], column_types: dict[str, pa.DataType]
) -> Exception:
    message = str(exc)
    if "straddling object straddles two block boundaries" in message:
        return _RowTooLarge()
    if "Empty CSV file or block" in message:
        return _no_rows_error()  # a header line without a line break after it
    match = _CONVERSION_ERROR.search(message)
    if match and int(match["index"]) < len(names):
        name = names[int(match["index"])]
        failed_type = match["type"]
        widened = pa.string()
        if failed_type in {"int64", "null"} and column_types.get(name) != pa.float64():
            try:
                float(match["value"].replace(",", "."))
            except ValueError:
                pass
            else:
                widened = pa.float64()
        return _ColumnTypeMismatch(name, widened)
    logger.info("unreadable csv: %s", message)
    return IngestError(f"This file could not be read as a table: {message}", code="invalid_file")


# --- Parquet input ---------------------------------------------------------------------------


def _corrupt_parquet_error(exc: Exception) -> IngestError:
    logger.info("corrupt parquet: %s", exc)
    return IngestError(
        "This Parquet file is damaged or incomplete (it may have been cut off during upload).",
        code="corrupt_parquet",
    )


def _convert_parquet(
    source: Path,
    sink: _ParquetSink,
    *,
    max_columns: int,
    progress: _Progress,
    should_cancel: Callable[[], bool] | None,
) -> IngestReport:
    try:
        parquet_file = pq.ParquetFile(source)
        schema = parquet_file.schema_arrow
    except (pa.ArrowException, OSError) as exc:
        raise _corrupt_parquet_error(exc) from exc
    if len(schema) > max_columns:
        raise _too_many_columns_error(len(schema), max_columns)
    if len(schema) == 0:
        raise IngestError("The Parquet file has no columns.", code="empty_file")
    namer = _ColumnNamer()
    names = namer.add(schema.names)
    total_rows = max(parquet_file.metadata.num_rows, 1)
    batches = _guarded(
        parquet_file.iter_batches(batch_size=ROW_GROUP_ROWS),
        _corrupt_parquet_error,
        pa.ArrowException,
        OSError,
    )
    rows_read = 0
    for batch in batches:
        _check_cancelled(should_cancel)
        arrays = [_normalise_parquet_array(column) for column in batch.columns]
        sink.write(pa.RecordBatch.from_arrays(arrays, names=names))
        rows_read += batch.num_rows
        progress(rows_read / total_rows)
    if sink.rows == 0:
        raise _no_rows_error()
    return IngestReport(
        source_format="parquet",
        row_count=sink.rows,
        column_count=len(names),
        encoding=None,
        delimiter=None,
        renamed_columns=namer.renamed,
        notes=namer.notes(),
    )


def _normalise_parquet_array(array: pa.Array) -> pa.Array:
    """Reduce exotic Arrow types to the plain ones the profiler and trainers expect."""
    arrow_type = array.type
    if pa.types.is_dictionary(arrow_type):
        return _normalise_parquet_array(array.dictionary_decode())
    if pa.types.is_large_string(arrow_type) or pa.types.is_string_view(arrow_type):
        return array.cast(pa.string())
    if pa.types.is_decimal(arrow_type):
        return array.cast(pa.float64())
    if pa.types.is_nested(arrow_type):
        return pa.array(
            [None if value is None else _json_text(value) for value in array.to_pylist()],
            pa.string(),
        )
    return array


def _json_text(value: object) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


# --- Excel -----------------------------------------------------------------------------------


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


def _convert_excel(
    source: Path,
    sink: _ParquetSink,
    *,
    max_columns: int,
    progress: _Progress,
    should_cancel: Callable[[], bool] | None,
) -> IngestReport:
    _check_zip_bomb(source)
    # A file object rather than the path: openpyxl refuses paths whose extension is not .xlsx,
    # and content detection may have found a workbook behind another name.
    with source.open("rb") as file:
        try:
            workbook = openpyxl.load_workbook(file, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds (KeyError, XML errors) for bad files
            raise _corrupt_excel_error(exc) from exc
        try:
            return _read_first_sheet(
                workbook,
                sink,
                max_columns=max_columns,
                progress=progress,
                should_cancel=should_cancel,
            )
        finally:
            workbook.close()


def _read_first_sheet(
    workbook: Any,
    sink: _ParquetSink,
    *,
    max_columns: int,
    progress: _Progress,
    should_cancel: Callable[[], bool] | None,
) -> IngestReport:
    if not workbook.worksheets:
        raise IngestError("The workbook has no sheets.", code="empty_file")
    sheet = workbook.worksheets[0]
    rows = _guarded(
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
    if len(header) > max_columns:
        raise _too_many_columns_error(len(header), max_columns)

    namer = _ColumnNamer()
    namer.add(["" if value is None else _cell_text(value) for value in header])
    columns: list[list[Any]] = [[] for _ in header]
    error_cells = 0
    rows_read = 0
    total_rows = max(sheet.max_row or 0, 1)
    for row in rows:
        rows_read += 1
        if not any(_is_present(value) for value in row):
            continue
        if len(row) > len(columns) and any(_is_present(v) for v in row[len(columns) :]):
            # Data right of the last named column still gets a column rather than being lost.
            last = max(i for i, value in enumerate(row) if _is_present(value))
            if last + 1 > max_columns:
                raise _too_many_columns_error(last + 1, max_columns)
            namer.add([""] * (last + 1 - len(columns)))
            columns += [[None] * len(columns[0]) for _ in range(last + 1 - len(columns))]
        for index, column in enumerate(columns):
            value = row[index] if index < len(row) else None
            if isinstance(value, str) and value in _EXCEL_ERROR_VALUES:
                error_cells += 1
                value = None
            column.append(value)
        if len(columns[0]) >= BATCH_ROWS:
            _check_cancelled(should_cancel)
            sink.write(_python_batch(columns, namer.names))
            columns = [[] for _ in columns]
            progress(rows_read / total_rows)
    if columns[0]:
        sink.write(_python_batch(columns, namer.names))
    if sink.rows == 0:
        raise _no_rows_error()

    notes = namer.notes()
    if len(workbook.worksheets) > 1:
        notes.append(
            f"Read the first sheet, “{sheet.title}”; the workbook has "
            f"{len(workbook.worksheets)} sheets."
        )
    if error_cells:
        noun = "cell" if error_cells == 1 else "cells"
        notes.append(f"Treated {error_cells:,} Excel error {noun} (such as #DIV/0!) as missing.")
    return IngestReport(
        source_format="excel",
        row_count=sink.rows,
        column_count=len(namer.names),
        encoding=None,
        delimiter=None,
        renamed_columns=namer.renamed,
        notes=notes,
    )


def _is_present(value: object) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def _cell_text(value: object) -> str:
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


# --- JSON Lines ------------------------------------------------------------------------------


def _convert_jsonl(
    source: Path,
    sink: _ParquetSink,
    *,
    max_columns: int,
    progress: _Progress,
    should_cancel: Callable[[], bool] | None,
) -> IngestReport:
    size = max(source.stat().st_size, 1)
    namer = _ColumnNamer()
    column_of_key: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    removed_nul = False
    encoding = "utf-8"
    bytes_read = 0
    with source.open("rb") as file:
        for line_number, raw_line in enumerate(file, start=1):
            bytes_read += len(raw_line)
            if line_number == 1 and raw_line.startswith(codecs.BOM_UTF8):
                raw_line = raw_line[len(codecs.BOM_UTF8) :]
                encoding = "utf-8-sig"
            if b"\x00" in raw_line:
                raw_line = raw_line.replace(b"\x00", b"")
                removed_nul = True
            line = raw_line.decode("utf-8", errors="replace").strip()
            if not line:
                continue
            rows.append(_parse_json_object(line, line_number))
            new_keys = [key for key in rows[-1] if key not in column_of_key]
            if new_keys:
                if len(column_of_key) + len(new_keys) > max_columns:
                    raise _too_many_columns_error(len(column_of_key) + len(new_keys), max_columns)
                column_of_key.update(zip(new_keys, namer.add(new_keys), strict=True))
            if len(rows) >= BATCH_ROWS:
                _check_cancelled(should_cancel)
                sink.write(_json_batch(rows, column_of_key))
                rows.clear()
                progress(bytes_read / size)
    if rows:
        sink.write(_json_batch(rows, column_of_key))
    if sink.rows == 0:
        raise IngestError("The file has no JSON objects.", code="no_rows")
    notes = namer.notes()
    if removed_nul:
        notes.append("Removed NUL bytes.")
    return IngestReport(
        source_format="jsonl",
        row_count=sink.rows,
        column_count=len(column_of_key),
        encoding=encoding,
        delimiter=None,
        renamed_columns=namer.renamed,
        notes=notes,
    )


def _parse_json_object(line: str, line_number: int) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise IngestError(
            f"Line {line_number:,} is not valid JSON ({exc.msg}, at character {exc.colno}).",
            code="invalid_json",
        ) from exc
    except RecursionError as exc:
        raise IngestError(
            f"Line {line_number:,} is nested too deeply to be read.", code="invalid_json"
        ) from exc
    if not isinstance(value, dict):
        raise IngestError(
            f"Line {line_number:,} is not a JSON object; each line must be one object "
            'like {"name": "value"}.',
            code="invalid_json",
        )
    return value


def _json_batch(rows: list[dict[str, Any]], column_of_key: dict[str, str]) -> pa.RecordBatch:
    columns = [[row.get(key) for row in rows] for key in column_of_key]
    return _python_batch(columns, list(column_of_key.values()))


# --- Python values to Arrow ------------------------------------------------------------------


def _python_batch(columns: list[list[Any]], names: list[str]) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([_python_array(values) for values in columns], names=names)


def _kind_of_type(value_type: type) -> str:
    if value_type is bool:
        return "bool"
    if issubclass(value_type, int):
        return "int"
    if issubclass(value_type, float):
        return "float"
    if issubclass(value_type, dt.date):  # datetime.datetime included
        return "datetime"
    if issubclass(value_type, str):
        return "string"
    return "text"


def _python_array(values: list[Any]) -> pa.Array:
    """Type a column of Python values: one kind keeps its type, ints with floats become
    float, anything else mixed becomes text (nested values as JSON text)."""
    # Classifying distinct Python types rather than each value keeps this loop in C.
    kinds = {_kind_of_type(value_type) for value_type in set(map(type, values)) - {type(None)}}
    if "int" in kinds:
        integers = [value for value in values if type(value) is int]
        if integers and not _INT64_MIN <= min(integers) <= max(integers) <= _INT64_MAX:
            kinds = (kinds - {"int"}) | {"text"}  # too big for Arrow's int64: keep the digits
    if not kinds:
        return pa.nulls(len(values))
    if kinds == {"bool"}:
        return pa.array(values, pa.bool_())
    if kinds == {"int"}:
        return pa.array(values, pa.int64())
    if kinds <= {"int", "float"}:
        return pa.array(values, pa.float64())
    if kinds == {"datetime"}:
        return pa.array([_naive_datetime(value) for value in values], pa.timestamp("us"))
    if kinds == {"string"}:
        return pa.array(values, pa.string())
    return pa.array([_value_text(value) for value in values], pa.string())


def _naive_datetime(value: dt.date | None) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        return dt.datetime.combine(value, dt.time())
    if value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _value_text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dict | list):
        return _json_text(value)
    return str(value)


# --- entry points ----------------------------------------------------------------------------


def convert_to_parquet(
    source: Path,
    destination: Path,
    *,
    original_name: str,
    max_columns: int = MAX_COLUMNS,
    on_progress: Callable[[float], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> IngestReport:
    """Stream `source` into a Parquet file at `destination` and report what was found.

    The file is written under a temporary sibling name and moved into place only when complete;
    on any error the temporary file is removed and nothing new appears at `destination`.
    `on_progress` receives the share (0.0-1.0) of the input read; `should_cancel` is polled
    between chunks and makes the conversion raise IngestError(code="cancelled").
    """
    source = Path(source)
    destination = Path(destination)
    source_format = detect_format(source, original_name)
    destination.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary_name = tempfile.mkstemp(
        prefix=f".{destination.name}.", suffix=".part", dir=destination.parent
    )
    os.close(descriptor)
    temporary = Path(temporary_name)
    sink = _ParquetSink(temporary)
    progress = _Progress(on_progress)
    options: dict[str, Any] = {
        "max_columns": max_columns,
        "progress": progress,
        "should_cancel": should_cancel,
    }
    try:
        if source_format == "csv":
            extension = Path(original_name).suffix.lower()
            report = _convert_csv(source, sink, extension=extension, **options)
        elif source_format == "parquet":
            report = _convert_parquet(source, sink, **options)
        elif source_format == "excel":
            report = _convert_excel(source, sink, **options)
        else:
            report = _convert_jsonl(source, sink, **options)
        sink.close()
        os.replace(temporary, destination)
    except BaseException:
        sink.abort()
        temporary.unlink(missing_ok=True)
        raise
    progress(1.0)
    logger.info(
        "converted %s (%s): %s rows, %s columns",
        original_name,
        source_format,
        report.row_count,
        report.column_count,
    )
    return report


def read_preview(
    parquet_path: Path, *, offset: int, limit: int
) -> tuple[list[str], list[list[object]]]:
    """Return the column names and rows offset..offset+limit as JSON-safe Python values.

    Only the row groups that hold those rows are read.
    """
    if offset < 0 or limit < 0:
        raise ValueError("offset and limit must not be negative")
    parquet_file = pq.ParquetFile(parquet_path)
    names = parquet_file.schema_arrow.names
    end = min(offset + limit, parquet_file.metadata.num_rows)
    if offset >= end:
        return names, []
    groups: list[int] = []
    first_group_start = 0
    group_start = 0
    for index in range(parquet_file.num_row_groups):
        group_rows = parquet_file.metadata.row_group(index).num_rows
        if group_start < end and group_start + group_rows > offset:
            if not groups:
                first_group_start = group_start
            groups.append(index)
        group_start += group_rows
    table = parquet_file.read_row_groups(groups).slice(offset - first_group_start, end - offset)
    columns = [[_json_safe(value) for value in column.to_pylist()] for column in table.columns]
    return names, [list(row) for row in zip(*columns, strict=True)]


def _json_safe(value: object) -> object:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if hasattr(value, "isoformat"):  # pandas.Timestamp for nanosecond timestamps
        return value.isoformat()
    try:
        number = float(value)  # type: ignore[arg-type]  # Decimal and numpy scalars
    except (TypeError, ValueError):
        return str(value)
    return number if math.isfinite(number) else None
