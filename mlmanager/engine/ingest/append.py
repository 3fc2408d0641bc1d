"""Rows appended to a dataset: checked against its columns and their types, then written after
its rows into a new Parquet file (a new version of the dataset).

The check is EasyAutoML's compatibility check: every column of the dataset must be sent (a
value may be missing), no other column may be, and each value must fit its column's type —
a number for a number column (text in the dataset's number format too), a whole number for
an integer column, true/false (or yes/no, 1/0) for a yes/no column, a date for a date
column, a JSON object or array for a JSON column, a single value for the others. Label-like
columns (categories, text, identifiers) stored as numbers accept any single value: the new
version stores the column as text. Nothing is written unless every value fits.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mlmanager.engine.ingest.python_values import json_text, python_array
from mlmanager.engine.ingest.values import ALWAYS_MISSING, NumberFormat

# Examples of values that do not fit, per column.
MAX_EXAMPLES = 5
EXAMPLE_MAX_CHARS = 40
# Rows of the original file copied per step.
COPY_CHUNK_ROWS = 65_536

_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})
# Types whose values are labels: a number column of these accepts text, and becomes text.
LABEL_TYPES = frozenset({"categorical", "text", "identifier", "constant", "empty"})
_MISSING_TEXTS = frozenset({*ALWAYS_MISSING, ""})

# What a value of each kind of column must be, in the words the error uses.
EXPECTED = {
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
    "datetime": "a date",
    "json": "a JSON object or array",
    "value": "a single value",
}


@dataclass
class Mistyped:
    """The values of one column that do not fit its type: how many, and the first few."""

    type: str
    expected: str
    count: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "expected": self.expected,
            "count": self.count,
            "examples": list(self.examples),
        }


@dataclass
class AppendProblems:
    missing_columns: list[str] = field(default_factory=list)
    unknown_columns: list[str] = field(default_factory=list)
    mistyped: dict[str, Mistyped] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.missing_columns or self.unknown_columns or self.mistyped)

    def to_dict(self) -> dict[str, Any]:
        return {
            "missing_columns": list(self.missing_columns),
            "unknown_columns": list(self.unknown_columns),
            "mistyped": {name: value.to_dict() for name, value in self.mistyped.items()},
        }


class _Unfit(Exception):
    pass


def is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if value is pd.NaT:
        return True
    return isinstance(value, str) and value.strip().lower() in _MISSING_TEXTS


def check_rows(
    columns: Mapping[str, Sequence[Any]],
    *,
    schema: pa.Schema,
    types: Mapping[str, str],
    number_format: NumberFormat | None = None,
) -> tuple[pa.Table | None, AppendProblems]:
    """The rows `columns` (column name -> values, all of one length) as a table in the
    dataset's columns, or None and what does not fit. `schema` is the dataset's stored file's,
    `types` its profile's column types; the table's schema may widen the file's (whole
    numbers to decimals in a numeric column, numbers to text in a label column)."""
    number_format = number_format or NumberFormat()
    problems = AppendProblems(
        missing_columns=[name for name in schema.names if name not in columns],
        unknown_columns=[name for name in columns if name not in schema.names],
    )
    if problems.missing_columns or problems.unknown_columns:
        return None, problems
    arrays = []
    for arrow_field in schema:
        kind = types.get(arrow_field.name, "")
        array, mistyped = _column(
            list(columns[arrow_field.name]), arrow_field.type, kind, number_format
        )
        if mistyped is not None:
            problems.mistyped[arrow_field.name] = mistyped
        arrays.append(array)
    if problems:
        return None, problems
    return pa.table(dict(zip(schema.names, arrays, strict=True))), problems


def target_schema(schema: pa.Schema, rows: pa.Table) -> pa.Schema:
    """The new version's schema: the file's, widened where the appended rows need it."""
    return pa.schema(
        [
            pa.field(name, rows.schema.field(name).type)
            if not pa.types.is_null(rows.schema.field(name).type)
            else schema.field(name)
            for name in schema.names
        ]
    )


def write_appended(source: Path, rows: pa.Table, destination: Path) -> None:
    """Write `destination`: the Parquet file `source`, then `rows`, in the widened schema.
    Memory stays bounded by a chunk of rows; `destination` appears only once complete."""
    original = pq.ParquetFile(source)
    schema = target_schema(original.schema_arrow, rows)
    temporary = destination.with_name(destination.name + ".part")
    try:
        with pq.ParquetWriter(temporary, schema) as writer:
            for batch in original.iter_batches(batch_size=COPY_CHUNK_ROWS):
                writer.write_table(pa.Table.from_batches([batch]).cast(schema))
            writer.write_table(rows.select(schema.names).cast(schema))
        temporary.replace(destination)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _column(
    values: list[Any], arrow_type: pa.DataType, kind: str, number_format: NumberFormat
) -> tuple[pa.Array, Mistyped | None]:
    """The values converted for a column of `arrow_type` and profile type `kind`."""
    if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type):
        if kind in LABEL_TYPES:
            return _label_numbers(values, arrow_type, kind, number_format)
        if kind == "boolean":  # stored as 1 and 0
            converted, mistyped = _convert_values(values, kind, "boolean", _boolean)
            if mistyped is not None:
                return pa.nulls(len(values)), mistyped
            return pa.array([None if v is None else int(v) for v in converted], arrow_type), None
        whole = kind == "integer" or (pa.types.is_integer(arrow_type) and kind != "numeric")
        return _numbers(
            values, kind, number_format, whole=whole, floating=pa.types.is_floating(arrow_type)
        )
    if pa.types.is_boolean(arrow_type):
        return _convert(values, kind, "boolean", _boolean, pa.bool_())
    if pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type):
        return _convert(values, kind, "datetime", _timestamp_for(arrow_type), arrow_type)
    if pa.types.is_null(arrow_type):
        converted, mistyped = _convert_values(values, kind, "value", _single)
        return python_array(converted), mistyped
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        if kind == "json":
            return _convert(values, kind, "json", _json, pa.string())
        if kind == "datetime":
            return _convert(values, kind, "datetime", _date_text, pa.string())
        if kind == "boolean":
            return _convert(values, kind, "boolean", _boolean_text, pa.string())
        return _convert(values, kind, "value", _text, pa.string())
    return _convert(values, kind, "value", lambda value: _cast(value, arrow_type), arrow_type)


def _numbers(
    values: list[Any], kind: str, number_format: NumberFormat, *, whole: bool, floating: bool
) -> tuple[pa.Array, Mistyped | None]:
    pattern = re.compile(number_format.number_pattern)

    def number(value: Any) -> Any:
        parsed = _number(value, number_format, pattern)
        if whole and not float(parsed).is_integer():
            raise _Unfit()
        return parsed

    converted, mistyped = _convert_values(values, kind, "integer" if whole else "number", number)
    if mistyped is not None:
        return pa.nulls(len(values)), mistyped
    if whole and not floating:
        return pa.array([None if v is None else int(v) for v in converted], pa.int64()), None
    return pa.array([None if v is None else float(v) for v in converted], pa.float64()), None


def _label_numbers(
    values: list[Any], arrow_type: pa.DataType, kind: str, number_format: NumberFormat
) -> tuple[pa.Array, Mistyped | None]:
    """A label column stored as numbers: numbers stay numbers; any other single value turns
    the column into text (the original's numbers as they are written)."""
    whole = pa.types.is_integer(arrow_type)
    array, mistyped = _numbers(
        values, kind, number_format, whole=whole, floating=pa.types.is_floating(arrow_type)
    )
    if mistyped is None:
        return array, None
    return _convert(values, kind, "value", _text, pa.string())


def _number(value: Any, number_format: NumberFormat, pattern: re.Pattern[str]) -> float | int:
    if isinstance(value, bool):
        raise _Unfit()
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Unfit()
        return value
    if isinstance(value, str):
        text = value.strip()
        if not pattern.fullmatch(text):
            raise _Unfit()
        if number_format.thousands_separator:
            text = text.replace(number_format.thousands_separator, "")
        text = text.replace(number_format.decimal_separator, ".")
        number = float(text)
        if not math.isfinite(number):
            raise _Unfit()
        return int(number) if number.is_integer() and "." not in text else number
    raise _Unfit()


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | str):
        text = str(int(value)) if isinstance(value, int | float) and value in (0, 1) else value
        lowered = str(text).strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise _Unfit()


def _boolean_text(value: Any) -> str:
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip()
    raise _Unfit()


def _timestamp_for(arrow_type: pa.DataType) -> Any:
    timezone = getattr(arrow_type, "tz", None)

    def timestamp(value: Any) -> Any:
        parsed = _parse_date(value)
        if timezone is None and parsed.tzinfo is not None:
            parsed = parsed.tz_convert("UTC").tz_localize(None)
        elif timezone is not None and parsed.tzinfo is None:
            parsed = parsed.tz_localize("UTC")
        if pa.types.is_date(arrow_type):
            return parsed.date()
        return parsed.to_pydatetime()

    return timestamp


def _parse_date(value: Any) -> pd.Timestamp:
    if isinstance(value, bool) or not isinstance(value, str | dt.date | dt.datetime):
        raise _Unfit()
    try:
        parsed = pd.Timestamp(value.strip() if isinstance(value, str) else value)
    except (ValueError, TypeError, OverflowError):
        raise _Unfit() from None
    if parsed is pd.NaT:
        raise _Unfit()
    return parsed


def _date_text(value: Any) -> str:
    _parse_date(value)
    return value.strip() if isinstance(value, str) else value.isoformat()


def _json(value: Any) -> str:
    if isinstance(value, dict | list):
        return json_text(value)
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            raise _Unfit() from None
        if isinstance(parsed, dict | list):
            return value
    raise _Unfit()


def _single(value: Any) -> Any:
    if isinstance(value, dict | list | tuple | set | bytes):
        raise _Unfit()
    return value


def _text(value: Any) -> str:
    value = _single(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _cast(value: Any, arrow_type: pa.DataType) -> Any:
    try:
        return pa.scalar(value).cast(arrow_type).as_py()
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError):
        raise _Unfit() from None


def _convert(
    values: list[Any], kind: str, expected: str, convert: Any, arrow_type: pa.DataType
) -> tuple[pa.Array, Mistyped | None]:
    converted, mistyped = _convert_values(values, kind, expected, convert)
    if mistyped is not None:
        return pa.nulls(len(values)), mistyped
    return pa.array(converted, arrow_type), None


def _convert_values(
    values: list[Any], kind: str, expected: str, convert: Any
) -> tuple[list[Any], Mistyped | None]:
    converted: list[Any] = []
    mistyped: Mistyped | None = None
    for index, value in enumerate(values):
        if is_missing(value):
            converted.append(None)
            continue
        try:
            converted.append(convert(value))
        except _Unfit:
            if mistyped is None:
                mistyped = Mistyped(type=kind, expected=EXPECTED[expected])
            mistyped.count += 1
            if len(mistyped.examples) < MAX_EXAMPLES:
                mistyped.examples.append({"row": index + 1, "value": _example(value)})
            converted.append(None)
    return converted, mistyped


def _example(value: Any) -> Any:
    """A value as the error shows it: JSON-safe, long text cut."""
    if isinstance(value, bool | int) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    text = value if isinstance(value, str) else json_text(value)
    return text if len(text) <= EXAMPLE_MAX_CHARS else text[: EXAMPLE_MAX_CHARS - 1] + "…"
