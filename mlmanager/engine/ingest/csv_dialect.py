"""How a delimited text file is written: delimiter, quote, decimal point, and its header.

All of it is guessed from the start of the file with the standard csv module, before pyarrow
reads the whole file with the answers.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from mlmanager.engine.ingest.detection import TextSample
from mlmanager.engine.ingest.errors import IngestError, too_many_columns_error

# csv.Sniffer slows down badly on long input, and a few dozen lines settle the dialect.
SNIFF_MAX_CHARS = 64 * 1024
SNIFF_MAX_LINES = 50
DELIMITER_CANDIDATES = ",;\t|"
# A header line longer than this is not a table anyone can use; stop looking for its end.
HEADER_MAX_CHARS = 16 << 20

_COMMA_DECIMAL = re.compile(r"[-+]?\d+,\d+")
_DOT_DECIMAL = re.compile(r"[-+]?\d*\.\d+")
_COMMA_GROUPED = re.compile(r"[-+]?\d{1,3}(,\d{3})+")
# A number with its thousands grouped: "1.234.567,89", "1,234.5", "1 234,5", "1'234.5".
_GROUPED_NUMBER = re.compile(
    r"[-+]?\d{1,3}(?P<thousands>[.,' \u00a0\u202f])\d{3}(?:(?P=thousands)\d{3})*"
    r"(?:(?P<decimal>[.,])\d+)?"
)


@dataclasses.dataclass
class CsvDialect:
    encoding: str
    delimiter: str
    quote_char: str
    decimal_point: str
    # The character grouping thousands in numbers ("1.234,5"), or None if none was seen.
    thousands_separator: str | None = None


class _LineTooLong(Exception):
    pass


def sniff_dialect(sample: TextSample, extension: str) -> CsvDialect:
    delimiter, quote_char = _sniff_delimiter(sample.text, extension)
    decimal_point, thousands_separator = _sniff_number_format(sample.text, delimiter, quote_char)
    return CsvDialect(
        encoding=sample.encoding,
        delimiter=delimiter,
        quote_char=quote_char,
        decimal_point=decimal_point,
        thousands_separator=thousands_separator,
    )


def read_header(source: Path, dialect: CsvDialect, max_columns: int) -> list[str] | None:
    """Read the header's fields without reading the body, or None if the csv module cannot."""
    with source.open("rb") as raw:
        text = io.TextIOWrapper(raw, encoding=dialect.encoding, errors="replace", newline="")

        def lines() -> Iterator[str]:
            while line := text.readline(HEADER_MAX_CHARS):
                if len(line) >= HEADER_MAX_CHARS and not line.endswith(("\n", "\r")):
                    if line.count(dialect.delimiter) + 1 > max_columns:
                        raise too_many_columns_error(line.count(dialect.delimiter) + 1, max_columns)
                    raise _LineTooLong
                yield line.replace("\x00", "")

        reader = csv.reader(lines(), delimiter=dialect.delimiter, quotechar=dialect.quote_char)
        try:
            return next(reader, [])
        except _LineTooLong:
            raise IngestError(
                "The first line of the file is too long to be a header row.", code="invalid_file"
            ) from None
        except csv.Error:
            return None


def trailing_delimiter_names(
    header: list[str] | None, sample: TextSample, dialect: CsvDialect
) -> list[str] | None:
    """Return the column names if every sampled data row ends with a delimiter, as some exports
    write, so that each has one empty field more than there are columns; otherwise None.

    The header may end with the delimiter as well; its empty last name is then not a column.
    """
    # pyarrow skips the header by counting line breaks, so a header with a line break inside a
    # quoted name keeps the ordinary reading.
    if not header or any("\n" in name or "\r" in name for name in header):
        return None
    rows = _sample_rows(sample, dialect)
    if not rows or rows[0] != header:
        return None
    data_rows = [row for row in rows[1:] if row]  # pyarrow skips blank lines too
    names = header[:-1] if len(header) > 1 and header[-1] == "" else header
    if data_rows and all(len(row) == len(names) + 1 and row[-1] == "" for row in data_rows):
        return names
    return None


def header_only_trailing_delimiter_names(
    header: list[str] | None, sample: TextSample, dialect: CsvDialect
) -> list[str] | None:
    """Return the header's names without its empty last one if only the header ends with a
    delimiter (`a,b,` over rows `1,2`): read as it stands, every row would look one field short.
    None otherwise."""
    if not header or len(header) < 2 or header[-1] != "":
        return None
    if any("\n" in name or "\r" in name for name in header):
        return None
    rows = _sample_rows(sample, dialect)
    if not rows or rows[0] != header:
        return None
    data_rows = [row for row in rows[1:] if row]
    if data_rows and all(len(row) == len(header) - 1 for row in data_rows):
        return header[:-1]
    return None


def _sample_rows(sample: TextSample, dialect: CsvDialect) -> list[list[str]]:
    rows = csv.reader(
        io.StringIO(sample.text[:SNIFF_MAX_CHARS]),
        delimiter=dialect.delimiter,
        quotechar=dialect.quote_char,
    )
    try:
        parsed = list(itertools.islice(rows, SNIFF_MAX_LINES))
    except csv.Error:
        return []
    if not sample.complete or len(sample.text) > SNIFF_MAX_CHARS:
        parsed = parsed[:-1]  # the sample may end partway through its last row
    return parsed


def _sniff_delimiter(text: str, extension: str) -> tuple[str, str]:
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


def _sniff_number_format(text: str, delimiter: str, quote_char: str) -> tuple[str, str | None]:
    """The decimal separator and the thousands separator (or None) the sample's numbers use."""
    comma_numbers = dot_numbers = 0
    grouped: Counter[tuple[str, str]] = Counter()
    rows = csv.reader(
        io.StringIO(text[:SNIFF_MAX_CHARS]), delimiter=delimiter, quotechar=quote_char
    )
    try:
        for row in itertools.islice(rows, SNIFF_MAX_LINES):
            for field in row:
                value = field.strip()
                # With a comma delimiter only a quoted field holds a comma, and "1,500" there is
                # more likely a thousand than one and a half.
                comma_grouped = delimiter == "," and _COMMA_GROUPED.fullmatch(value)
                if _COMMA_DECIMAL.fullmatch(value) and not comma_grouped:
                    comma_numbers += 1
                elif _DOT_DECIMAL.fullmatch(value):
                    dot_numbers += 1
                elif match := _GROUPED_NUMBER.fullmatch(value):
                    grouped[(match["decimal"] or "", match["thousands"])] += 1
    except csv.Error:
        pass  # a field longer than the csv module allows; the rows read so far decide
    decimal_point = "," if comma_numbers > dot_numbers else "."
    for (decimal, thousands), _count in grouped.most_common():
        if thousands != decimal_point and decimal in ("", decimal_point):
            return decimal_point, thousands
        if not comma_numbers and not dot_numbers and decimal and thousands != decimal:
            return decimal, thousands  # every number has grouped thousands and decimals
    return decimal_point, None
