"""Reading cell text honestly: which texts mean "missing", and numbers in the file's own format.

Missing-value tokens. A file marks a missing cell with an empty field, or with a word or sign
("?", "NA", "N/A", "-", "null", "None"). pandas' `na_values` turns a fixed list into missing
everywhere; that would turn a real category "None" (no heating) or "NA" (North America) into
missing too. So the tokens come in two groups, compared after trimming, ignoring case:

- `ALWAYS_MISSING`: signs and words nobody uses as a value ("?", "-", "N/A", "null", "#N/A",
  "NaN", empty or only spaces). They are missing in every column.
- `MISSING_AMONG_NUMBERS`: "NA" and "None", which are missing only in a column whose other
  values are all numbers (there they cannot be a category); in a text column they stay values.

Numbers are read with the decimal separator and thousands separator detected in the file
(`NumberFormat`): "1.234,5" is 1234.5 in a file written with a decimal comma.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc

ALWAYS_MISSING = frozenset({"?", "-", "--", "n/a", "#n/a", "#na", "<na>", "null", "nan", "-nan"})
MISSING_AMONG_NUMBERS = frozenset({"na", "none"})
# How an empty (or blank) cell is named among the tokens counted.
EMPTY_TOKEN = ""
# Examples of cells that could not be converted, kept to show the user.
MAX_EXAMPLES = 3
EXAMPLE_MAX_CHARS = 40
# Whole numbers of at most this many digits fit a float exactly, so a column of them can be
# stored as int64 after being read as float.
EXACT_INTEGER_DIGITS = 15

_ALWAYS = pa.array(sorted(ALWAYS_MISSING), pa.string())
_AMONG_NUMBERS = pa.array(sorted(MISSING_AMONG_NUMBERS), pa.string())
_STRING = pa.string()


@dataclasses.dataclass(frozen=True)
class NumberFormat:
    """How numbers are written in a file: "." or "," before the decimals, and the character
    that groups thousands (None: no grouping seen)."""

    decimal_separator: str = "."
    thousands_separator: str | None = None

    @property
    def number_pattern(self) -> str:
        """A regular expression a whole cell (trimmed) must match to be a number."""
        decimal = re.escape(self.decimal_separator)
        return rf"^[-+]?(?:{self._integer_part}(?:{decimal}\d*)?|{decimal}\d+)(?:[eE][-+]?\d+)?$"

    @property
    def integer_pattern(self) -> str:
        return rf"^[-+]?{self._integer_part}$"

    @property
    def _integer_part(self) -> str:
        if self.thousands_separator:
            return rf"(?:\d{{1,3}}(?:{re.escape(self.thousands_separator)}\d{{3}})+|\d+)"
        return r"\d+"

    def to_plain(self, texts: pa.Array) -> pa.Array:
        """Number texts (already matched by `number_pattern`) in the form pyarrow casts."""
        if self.thousands_separator:
            texts = pc.replace_substring(texts, self.thousands_separator, "")
        if self.decimal_separator != ".":
            texts = pc.replace_substring(texts, self.decimal_separator, ".")
        return texts


@dataclasses.dataclass
class NumberConversion:
    """What reading one column's text as numbers did: cells read, tokens taken as missing,
    cells that were neither (missing now too), with a few of them as examples."""

    converted: int = 0
    missing_tokens: Counter[str] = dataclasses.field(default_factory=Counter)
    unconverted: int = 0
    examples: list[str] = dataclasses.field(default_factory=list)

    def add(self, other: NumberConversion) -> None:
        self.converted += other.converted
        self.missing_tokens.update(other.missing_tokens)
        self.unconverted += other.unconverted
        for example in other.examples:
            if len(self.examples) < MAX_EXAMPLES and example not in self.examples:
                self.examples.append(example)

    def to_dict(self) -> dict:
        return {
            "converted": self.converted,
            "missing_tokens": dict(self.missing_tokens),
            "unconverted": self.unconverted,
            "examples": list(self.examples),
        }


def token_kinds(texts: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array, pa.Array]:
    """For a string array: its trimmed texts, and masks of blank cells, of `ALWAYS_MISSING`
    tokens and of `MISSING_AMONG_NUMBERS` tokens (null where the cell is null)."""
    trimmed = pc.utf8_trim_whitespace(texts)
    lowered = pc.utf8_lower(trimmed)
    blank = pc.equal(trimmed, "")
    always = pc.is_in(lowered, value_set=_ALWAYS)
    among_numbers = pc.is_in(lowered, value_set=_AMONG_NUMBERS)
    return trimmed, blank, always, among_numbers


def count_texts(texts: pa.Array, mask: pa.Array) -> Counter[str]:
    """How often each text occurs where `mask` is true."""
    chosen = texts.filter(mask)
    if not len(chosen):
        return Counter()
    counted = pc.value_counts(chosen)
    return Counter(
        dict(
            zip(
                counted.field("values").to_pylist(),
                counted.field("counts").to_pylist(),
                strict=True,
            )
        )
    )


def parse_numbers(
    texts: pa.Array, number_format: NumberFormat
) -> tuple[pa.Array, NumberConversion]:
    """Read a string array as float64 in `number_format`: numbers become values; blank cells
    and missing-value tokens of either group, and cells that are not numbers, become null.
    The second value counts each kind (blank cells count as the token "")."""
    if texts.type != _STRING:
        texts = texts.cast(_STRING)
    trimmed, blank, always, among_numbers = token_kinds(texts)
    is_token = pc.or_(pc.or_(blank, always), among_numbers)
    is_number = pc.and_not(
        pc.match_substring_regex(trimmed, number_format.number_pattern), is_token
    )
    is_number = pc.fill_null(is_number, False)
    numbers = pc.if_else(
        is_number,
        number_format.to_plain(pc.if_else(is_number, trimmed, "0")).cast(pa.float64()),
        pa.scalar(None, pa.float64()),
    )
    conversion = NumberConversion(converted=pc.sum(is_number).as_py() or 0)
    conversion.missing_tokens = count_texts(trimmed, pc.fill_null(is_token, False))
    unconverted = pc.fill_null(pc.invert(pc.or_(is_number, is_token)), False)
    conversion.unconverted = pc.sum(unconverted).as_py() or 0
    if conversion.unconverted:
        for example in pc.unique(trimmed.filter(unconverted)).to_pylist()[:MAX_EXAMPLES]:
            conversion.examples.append(_example(example))
    return numbers, conversion


def _example(text: str) -> str:
    return text if len(text) <= EXAMPLE_MAX_CHARS else text[: EXAMPLE_MAX_CHARS - 1] + "…"


@dataclasses.dataclass
class _ColumnScan:
    tokens: Counter[str] = dataclasses.field(default_factory=Counter)
    tokens_among_numbers: Counter[str] = dataclasses.field(default_factory=Counter)
    was_text: bool = False
    numbers_only: bool = True
    integers_only: bool = True
    has_number: bool = False


class MissingValueScan:
    """Finds missing-value tokens in the batches a reader writes, batch by batch.

    `ALWAYS_MISSING` tokens and blank texts become null at once and are counted per column;
    `MISSING_AMONG_NUMBERS` tokens are only counted, because whether they are missing depends
    on the rest of the column. `numeric_text_columns` then names the text columns whose every
    other value is a number in `number_format`: they are to be stored as numbers.
    """

    def __init__(self, number_format: NumberFormat | None = None) -> None:
        self.number_format = number_format or NumberFormat()
        self._columns: dict[str, _ColumnScan] = {}

    def reset(self) -> None:
        self._columns.clear()

    def apply(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        arrays = []
        for name, array in zip(batch.schema.names, batch.columns, strict=True):
            scan = self._columns.setdefault(name, _ColumnScan())
            if array.null_count:
                scan.tokens[EMPTY_TOKEN] += array.null_count
            if pa.types.is_string(array.type):
                array = self._scan_text(scan, array)
            arrays.append(array)
        return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)

    def _scan_text(self, scan: _ColumnScan, array: pa.Array) -> pa.Array:
        scan.was_text = True
        trimmed, blank, always, among_numbers = token_kinds(array)
        missing = pc.fill_null(pc.or_(blank, always), False)
        if pc.any(missing).as_py():
            scan.tokens.update(count_texts(trimmed, missing))
            array = pc.if_else(missing, pa.scalar(None, _STRING), array)
        among_numbers = pc.fill_null(among_numbers, False)
        scan.tokens_among_numbers.update(count_texts(trimmed, among_numbers))
        if scan.numbers_only:
            others = trimmed.filter(pc.invert(pc.or_(missing, among_numbers))).drop_null()
            if len(others):
                scan.has_number = True
                pattern = self.number_format.number_pattern
                scan.numbers_only = bool(pc.all(pc.match_substring_regex(others, pattern)).as_py())
                if scan.numbers_only and scan.integers_only:
                    scan.integers_only = (
                        bool(
                            pc.all(
                                pc.match_substring_regex(others, self.number_format.integer_pattern)
                            ).as_py()
                        )
                        and (pc.max(pc.utf8_length(others)).as_py() or 0) <= EXACT_INTEGER_DIGITS
                    )
        return array

    def numeric_text_columns(self, *, also_without_tokens: bool) -> dict[str, bool]:
        """Text columns to store as numbers, each with whether its numbers are all whole.

        A column qualifies when all its values but tokens are numbers and it held a token (the
        reason it was read as text); `also_without_tokens` lets a column without one qualify too
        (text files, whose reader could not read grouped thousands as numbers)."""
        return {
            name: scan.integers_only
            for name, scan in self._columns.items()
            if scan.was_text
            and scan.numbers_only
            and scan.has_number
            and (
                also_without_tokens
                or scan.tokens.keys() - {EMPTY_TOKEN}
                or scan.tokens_among_numbers
            )
        }

    def missing_tokens(self, numeric_columns: set[str] | frozenset[str] = frozenset()) -> dict:
        """Tokens taken as missing, per column: `MISSING_AMONG_NUMBERS` ones only in
        `numeric_columns` (those stored as numbers)."""
        found: dict[str, dict[str, int]] = {}
        for name, scan in self._columns.items():
            tokens = Counter(scan.tokens)
            if name in numeric_columns:
                tokens.update(scan.tokens_among_numbers)
            if tokens:
                found[name] = dict(sorted(tokens.items(), key=lambda item: (-item[1], item[0])))
        return found
