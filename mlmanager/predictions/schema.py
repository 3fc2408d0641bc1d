"""A model version's inputs as a schema, and request rows checked against it.

The request path works column by column with numpy: a column whose values are all plain numbers
(or all text) is accepted in one vectorised step, and only mixed columns are looked at value by
value, so a 10 000-row request costs milliseconds here. Every refusal names the row and the
field, in words a user understands.

Values the model can take but did not see in training are answered with warnings, not refused
(extrapolating is the user's call): a number outside the range seen in training, a category
never seen, a fraction for an input that held only whole numbers. What was seen is recorded on
the version when it is created (`recorded_inputs`); a version recorded before that has no
range or categories, and gets no warnings of those kinds.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from mlmanager.core.errors import ApplicationError
from mlmanager.engine.ingest.json_columns import json_path_value, parse_object

MAX_ROWS = 10_000

_NUMBER_TYPES = frozenset({"numeric", "integer"})
_EXPECTED = {
    "numeric": "a number",
    "integer": "a number",
    "boolean": "true or false",
    "datetime": "a date and time in ISO 8601, such as 2024-05-31T14:00:00",
    "categorical": "a text or a number",
    "text": "a text",
    "identifier": "a text or a number",
    "json": "a JSON value",
}
_TRUE_TEXTS = frozenset({"true", "yes", "y", "1", "t", "on"})
_FALSE_TEXTS = frozenset({"false", "no", "n", "0", "f", "off"})


# A categorical input with more distinct values than this in training records none of them
# (no unseen-category warnings for it): the version's row would grow past what a page loads
# quickly. The profiler calls a column categorical only up to 5 % distinct values.
MAX_RECORDED_CATEGORIES = 1_000


@dataclasses.dataclass(frozen=True)
class InputField:
    name: str
    type: str  # a profiling column type
    # What training saw (recorded_inputs); None when the version did not record it.
    low: float | None = None
    high: float | None = None
    categories: frozenset[str] | None = None
    # A child of a JSON column (datasets' expansion): the column and the child's key path.
    # A row may give the column's JSON instead of the child; it is expanded the same way.
    parent: str | None = None
    path: tuple[str, ...] = ()

    @property
    def expected(self) -> str:
        return _EXPECTED.get(self.type, "a text or a number")


@dataclasses.dataclass(frozen=True)
class InputWarning:
    """A value the model answered for, though training never saw one like it."""

    row: int
    field: str
    code: str  # out_of_range, unseen_category, not_integer
    value: Any
    low: float | None = None
    high: float | None = None

    def message(self, decimal_separator: str = ".", templates: dict[str, str] | None = None) -> str:
        """In words, numbers written with `decimal_separator`. `templates` are the translated
        sentences (_warning_templates), looked up once for a request's many warnings."""
        template = (templates or _warning_templates())[self.code]
        if self.code == "unseen_category":
            text = str(self.value)
            return template % {"value": text if len(text) <= 60 else text[:59] + "…"}
        return template % {
            "value": number_text(self.value, decimal_separator),
            "low": number_text(self.low, decimal_separator),
            "high": number_text(self.high, decimal_separator),
        }


def warnings_as_dicts(
    warnings: list[InputWarning], decimal_separator: str = "."
) -> list[dict[str, Any]]:
    """The API's `warnings`: `{row, field, code, message}` each."""
    templates = _warning_templates()
    return [
        {
            "row": warning.row,
            "field": warning.field,
            "code": warning.code,
            "message": warning.message(decimal_separator, templates),
        }
        for warning in warnings
    ]


def _warning_templates() -> dict[str, str]:
    return {
        "out_of_range": _(
            "%(value)s is outside the range seen in training (%(low)s to %(high)s); "
            "the prediction extrapolates."
        ),
        "unseen_category": _(
            "“%(value)s” was not seen in training; the model treats it as an unknown value."
        ),
        "not_integer": _(
            "%(value)s is not a whole number, and this input held only whole numbers in training."
        ),
    }


@dataclasses.dataclass(frozen=True)
class ParsedRows:
    """Validated rows: one numpy array per input (see InputSchema._column)."""

    columns: dict[str, np.ndarray]
    count: int
    # The rows as sent (for the prediction log); built lazily for column-oriented payloads.
    payload_rows: list[dict[str, Any]] | None
    payload_columns: dict[str, list[Any]] | None

    def row(self, index: int) -> dict[str, Any]:
        if self.payload_rows is not None:
            return self.payload_rows[index]
        assert self.payload_columns is not None
        return {name: values[index] for name, values in self.payload_columns.items()}


class InputSchema:
    def __init__(self, fields: Iterable[InputField]):
        self.fields = list(fields)
        self.by_name = {field.name: field for field in self.fields}
        # JSON columns whose children are inputs: a row may give the column instead.
        self.parents: dict[str, list[InputField]] = {}
        for field in self.fields:
            if field.parent:
                self.parents.setdefault(field.parent, []).append(field)

    @classmethod
    def of_version(cls, inputs: list[dict[str, Any]]) -> InputSchema:
        return cls(
            InputField(
                str(item["name"]),
                str(item.get("type", "")),
                low=item.get("min"),
                high=item.get("max"),
                categories=frozenset(item["categories"]) if "categories" in item else None,
                parent=item.get("expanded_from") or None,
                path=tuple(item.get("json_path") or ()),
            )
            for item in inputs
        )

    def describe(self) -> list[dict[str, str]]:
        return [{"name": f.name, "type": f.type, "expected": f.expected} for f in self.fields]

    # --- payloads ----------------------------------------------------------------------------

    def parse_payload(self, payload: Any) -> ParsedRows:
        """`{"rows": [{..}, ..]}` or `{"columns": {"name": [..], ..}}` → ParsedRows."""
        if not isinstance(payload, dict):
            raise _invalid(_("The body must be a JSON object with “rows” or “columns”."))
        extra = sorted(set(payload) - {"rows", "columns"})
        if extra:
            raise _invalid(
                _("Unknown top-level field(s): %(names)s. Send “rows” or “columns”.")
                % {"names": ", ".join(extra)},
                code="unknown_fields",
                details={"fields": extra},
            )
        if "rows" not in payload and "columns" not in payload:
            raise _invalid(
                _(
                    "The body has neither “rows” nor “columns”. Send “rows” (a list of "
                    "objects, one per row) or “columns” (an object with a list of values per "
                    "input)."
                ),
                code="no_rows",
                details={"missing": ["rows", "columns"]},
            )
        if "rows" in payload and "columns" in payload:
            raise _invalid(_("Send either “rows” or “columns”, not both."))
        if "rows" in payload:
            return self.parse_rows(payload["rows"])
        return self.parse_columns(payload["columns"])

    def parse_rows(self, rows: Any) -> ParsedRows:
        if not isinstance(rows, list):
            raise _invalid(_("“rows” must be a list of objects, one per row."))
        _check_count(len(rows))
        for index, row in enumerate(rows):
            if not isinstance(row, dict):
                raise _invalid(
                    _("Row %(row)s must be an object of input values.") % {"row": index},
                    details={"row": index},
                )
        self._check_names(set().union(*(row.keys() for row in rows)))
        sent, rows = rows, self._expand_rows(rows)
        columns = {
            field.name: self._column(field, [row.get(field.name) for row in rows])
            for field in self.fields
        }
        return ParsedRows(columns, len(rows), payload_rows=sent, payload_columns=None)

    def _expand_rows(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Rows with the children of each JSON column they give filled in from it (a child
        the row gives itself is kept); the column stays only where it is an input itself."""
        if not self.parents:
            return rows
        expanded = []
        for index, row in enumerate(rows):
            given = [parent for parent in self.parents if parent in row]
            if given:
                row = dict(row)
                for parent in given:
                    value = row[parent] if parent in self.by_name else row.pop(parent)
                    self._check_parent(parent, index, value)
                    for field in self.parents[parent]:
                        if field.name not in row:
                            row[field.name] = json_path_value(value, field.path)
            expanded.append(row)
        return expanded

    def _check_parent(self, parent: str, row: int, value: Any) -> None:
        if value is not None and parse_object(value) is None:
            raise _wrong(InputField(parent, "json"), row, value, expected=_("a JSON object"))

    def parse_columns(self, columns: Any) -> ParsedRows:
        if not isinstance(columns, dict) or not columns:
            raise _invalid(_("“columns” must be an object of lists, one list per input."))
        self._check_names(set(columns))
        lengths = set()
        for name, values in columns.items():
            if not isinstance(values, list):
                raise _invalid(
                    _("Column “%(name)s” must be a list of values.") % {"name": name},
                    details={"field": name},
                )
            lengths.add(len(values))
        if len(lengths) != 1:
            raise _invalid(_("Every column must hold the same number of values."))
        count = lengths.pop()
        _check_count(count)
        columns = self._expand_columns(columns)
        parsed = {
            field.name: self._column(field, columns.get(field.name) or [None] * count)
            for field in self.fields
        }
        return ParsedRows(parsed, count, payload_rows=None, payload_columns=columns)

    def _expand_columns(self, columns: dict[str, list[Any]]) -> dict[str, list[Any]]:
        """As `_expand_rows`, for a column-oriented payload."""
        given = [parent for parent in self.parents if parent in columns]
        if not given:
            return columns
        columns = dict(columns)
        for parent in given:
            values = columns[parent] if parent in self.by_name else columns.pop(parent)
            for index, value in enumerate(values):
                self._check_parent(parent, index, value)
            for field in self.parents[parent]:
                if field.name not in columns:
                    columns[field.name] = [json_path_value(value, field.path) for value in values]
        return columns

    def _check_names(self, names: set[str]) -> None:
        unknown = sorted(str(name) for name in names - self.by_name.keys() - self.parents.keys())
        if unknown:
            shown = ", ".join(f"“{name}”" for name in unknown[:10])
            raise _invalid(
                _("Unknown input field(s): %(names)s. This model's inputs are: %(known)s.")
                % {"names": shown, "known": ", ".join(self.by_name)},
                code="unknown_fields",
                details={"fields": unknown, "inputs": list(self.by_name)},
            )

    # --- one column --------------------------------------------------------------------------

    def _column(self, field: InputField, values: list[Any]) -> np.ndarray:
        """Number inputs as float64 (NaN where missing: what the model's number step takes
        without conversion), every other input as an object array (None where missing)."""
        kinds = {type(value) for value in values}
        numbers = field.type in _NUMBER_TYPES
        if numbers and kinds <= {int, float, type(None)}:
            column = np.array(values, dtype=np.float64)  # None becomes NaN
            infinite = np.isinf(column)  # 1e999 parses as infinity
            if infinite.any():
                index = int(np.flatnonzero(infinite)[0])
                raise _wrong(field, index, values[index])
            return column
        if not numbers and field.type not in {"json", "datetime"} and kinds <= {str, type(None)}:
            return np.asarray(values, dtype=object)
        clean = _CLEANERS.get(field.type, _scalar)
        column = np.full(len(values), np.nan) if numbers else np.empty(len(values), dtype=object)
        for index, value in enumerate(values):
            if value is None:
                continue
            try:
                column[index] = clean(value)
            except (TypeError, ValueError):
                raise _wrong(field, index, value) from None
        return column

    # --- warnings ----------------------------------------------------------------------------

    def warnings(self, parsed: ParsedRows) -> list[InputWarning]:
        """What training did not see in `parsed`, by row, then in the order of the inputs.

        Number columns are checked in one vectorised step each; category columns value by
        value against a set: 10 000 rows without a warning took ~2 ms for three inputs (on a
        busy 2-core machine); each warning adds ~10 µs."""
        found: list[tuple[int, int, InputWarning]] = []
        for position, field in enumerate(self.fields):
            column = parsed.columns.get(field.name)
            if column is None:
                continue
            for warning in _field_warnings(field, column):
                found.append((warning.row, position, warning))
        found.sort(key=lambda item: item[:2])
        return [warning for _row, _position, warning in found]

    # --- the web form ------------------------------------------------------------------------

    def clean_value(self, field: InputField, value: Any, *, decimal_separator: str = ".") -> Any:
        """One form value (text) as the model takes it; ValueError with the expectation.
        Numbers are read with the user's decimal separator (parse_number)."""
        if value in (None, ""):
            return None
        if field.type in _NUMBER_TYPES and isinstance(value, str):
            return parse_number(value, decimal_separator=decimal_separator)
        try:
            return _CLEANERS.get(field.type, _scalar)(value)
        except (TypeError, ValueError):
            raise ValueError(_("Expected %(what)s.") % {"what": field.expected}) from None


def _field_warnings(field: InputField, column: np.ndarray) -> list[InputWarning]:
    if field.type in _NUMBER_TYPES and column.dtype.kind == "f":
        warnings = []
        for code, mask in _odd_numbers(field, column).items():
            # As Python numbers: indexing numpy scalars one by one is several times slower.
            rows, values = np.flatnonzero(mask).tolist(), column[mask].tolist()
            warnings += [
                InputWarning(row, field.name, code, value, field.low, field.high)
                for row, value in zip(rows, values, strict=True)
            ]
        return warnings
    if field.type == "categorical" and field.categories is not None:
        seen = field.categories
        return [
            InputWarning(index, field.name, "unseen_category", text)
            for index, value in enumerate(column.tolist())
            if (text := category_text(value)) and text not in seen
        ]
    return []


def _odd_numbers(field: InputField, column: np.ndarray) -> dict[str, np.ndarray]:
    """Per warning code, which values of a float column get it (NaN, missing, none)."""
    masks = {}
    if field.low is not None and field.high is not None:
        masks["out_of_range"] = (column < field.low) | (column > field.high)
    if field.type == "integer":
        masks["not_integer"] = np.isfinite(column) & (column != np.floor(column))
    return masks


def warning_counts(schema: InputSchema, table: pa.Table | pa.RecordBatch) -> dict[str, int]:
    """How many values of a batch's rows would get each warning (InputSchema.warnings),
    column by column without a Python step per row: a category column is judged by its
    distinct values. A number input the file holds as text is not judged."""
    counts = dict.fromkeys(("out_of_range", "unseen_category", "not_integer"), 0)
    for field in schema.fields:
        if field.name not in table.schema.names:
            continue
        column = table.column(field.name)
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        if field.type in _NUMBER_TYPES and (
            pa.types.is_integer(column.type) or pa.types.is_floating(column.type)
        ):
            numbers = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
            for code, mask in _odd_numbers(field, numbers).items():
                counts[code] += int(mask.sum())
        elif field.type == "categorical" and field.categories is not None:
            distinct = pc.unique(column).drop_null()
            unseen = [
                value
                for value in _python_values(distinct)
                if (text := category_text(value)) and text not in field.categories
            ]
            if unseen:
                found = pc.is_in(column, value_set=pa.array(unseen, type=distinct.type))
                counts["unseen_category"] += pc.sum(found).as_py() or 0
    return counts


def warning_summary(counts: dict[str, int]) -> str:
    """A batch's warning counts in a sentence for its job log."""
    parts = []
    if count := counts.get("out_of_range"):
        parts.append(
            ngettext(
                "%(count)s value outside the training range",
                "%(count)s values outside the training range",
                count,
            )
            % {"count": count}
        )
    if count := counts.get("unseen_category"):
        parts.append(
            ngettext(
                "%(count)s category not seen in training",
                "%(count)s categories not seen in training",
                count,
            )
            % {"count": count}
        )
    if count := counts.get("not_integer"):
        parts.append(
            ngettext(
                "%(count)s fraction for a whole-number input",
                "%(count)s fractions for whole-number inputs",
                count,
            )
            % {"count": count}
        )
    return _("Predicted all the same: %(list)s.") % {"list": ", ".join(parts)}


def category_text(value: Any) -> str:
    """A category as the model's encoder compares it (engine preprocessing `_text`): 3.0 and
    3 are both "3", text is trimmed; "" for a missing value."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value).strip()


def number_text(number: Any, decimal_separator: str) -> str:
    """A number in full (the shortest text that reads back the same), without "13.0" for 13,
    with the user's decimal separator."""
    if number is None:
        return ""
    if isinstance(number, float) and number.is_integer() and abs(number) < 2**53:
        number = int(number)
    text = repr(float(number)) if isinstance(number, float) else str(number)
    return text.replace(".", decimal_separator) if decimal_separator != "." else text


# --- numbers as people type them ---------------------------------------------------------------

_GROUP_SPACES = " \u00a0\u202f"  # a space, no-break space, narrow no-break space
_EXPONENT = r"(?:[eE][+-]?\d+)?"


def parse_number(text: str, *, decimal_separator: str = ".") -> float:
    """A number typed with the user's decimal separator ("49,5" with a decimal comma).

    Thousands may be grouped by spaces, or by the other mark ("1.234,5" with a comma) when the
    decimal separator follows; "1.234" with a decimal comma (or "1,234" with a point) could mean
    either and is refused, as is "49,5" with a decimal point: read as 495 it would predict
    nonsense without a word. ValueError with a sentence for the user."""
    other = "," if decimal_separator == "." else "."
    value = text.strip().replace("\u2212", "-")  # the minus sign some keyboards type
    decimal = re.escape(decimal_separator)
    for space in _GROUP_SPACES:
        value = re.sub(rf"(?<=\d){space}(?=\d{{3}}(?!\d))", "", value)
    plain = re.fullmatch(rf"[+-]?(?:\d+(?:{decimal}\d*)?|{decimal}\d+){_EXPONENT}", value)
    grouped = re.fullmatch(
        rf"[+-]?\d{{1,3}}(?:{re.escape(other)}\d{{3}})+{decimal}\d+{_EXPONENT}", value
    )
    if plain or grouped:
        number = float(value.replace(other, "").replace(decimal_separator, "."))
        if math.isfinite(number):
            return number
    example = number_text(1234.5, decimal_separator)
    if other in value and re.fullmatch(rf"[+-]?[\d{re.escape(other)}]+", value):
        raise ValueError(
            _(
                "“%(text)s” is not a number with your decimal separator “%(separator)s” (as in "
                "%(example)s). If “%(other)s” is your decimal separator, change it in your "
                "preferences."
            )
            % {"text": text, "separator": decimal_separator, "example": example, "other": other}
        )
    raise ValueError(
        _("“%(text)s” is not a number; write it as in %(example)s.")
        % {"text": text, "example": example}
    )


# --- what a version records about its inputs ---------------------------------------------------


def recorded_inputs(
    inputs: Iterable[tuple[str, str]] | Iterable[list[str]],
    *,
    columns: list[dict[str, Any]],
    parquet: Path | None,
) -> list[dict[str, Any]]:
    """What a version records about each input when it is created: `{name, type}`, with the
    `min` and `max` of a number input (from the dataset's profile), and every `categories` of
    a categorical input (read from the dataset's file: the profile lists the 10 most frequent).

    Facts are taken only where the profile still types the column as the run did (the dataset
    may have been re-typed while it trained); a fact that cannot be had is left out."""
    profiles = {column["name"]: column for column in columns}
    records: list[dict[str, Any]] = []
    category_names = []
    for name, kind in inputs:
        record: dict[str, Any] = {"name": name, "type": kind}
        profile = profiles.get(name) or {}
        if profile.get("expanded_from") and profile.get("json_path"):
            # A JSON column's child: a row may give the column's JSON instead (InputSchema).
            record["expanded_from"] = profile["expanded_from"]
            record["json_path"] = list(profile["json_path"])
        stats = profile.get("stats") or {}
        if profile.get("type") == kind:
            if (
                kind in _NUMBER_TYPES
                and stats.get("min") is not None
                and stats.get("max") is not None
            ):
                record["min"], record["max"] = stats["min"], stats["max"]
            if kind == "categorical":
                category_names.append(name)
        records.append(record)
    for name, categories in _categories(parquet, category_names).items():
        next(record for record in records if record["name"] == name)["categories"] = categories
    return records


def _categories(parquet: Path | None, names: list[str]) -> dict[str, list[str]]:
    if not names or parquet is None or not parquet.is_file():
        return {}
    found = {}
    try:
        table = pq.read_table(parquet, columns=names)
    except (OSError, pa.ArrowException):  # a file replaced while it trained: no categories
        return {}
    for name in names:
        distinct = pc.unique(table.column(name).drop_null())
        if len(distinct) > MAX_RECORDED_CATEGORIES:
            continue
        texts = {category_text(value) for value in _python_values(distinct)}
        found[name] = sorted(texts - {""})
    return found


def _python_values(values: pa.Array) -> list[Any]:
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    return values.to_pylist()


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError
    number = float(value.strip()) if isinstance(value, str) else float(value)
    if not math.isfinite(number):
        raise ValueError
    return number


def _boolean(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE_TEXTS:
            return True
        if text in _FALSE_TEXTS:
            return False
        return value.strip()  # a column typed boolean with its own two values
    raise TypeError


def _datetime(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError
    dt.datetime.fromisoformat(value.strip())  # raises ValueError
    return value.strip()


def _scalar(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError
    if isinstance(value, str | int | float | bool):
        return value
    raise TypeError  # objects and lists are not category or text values


def _json(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, allow_nan=False)


_CLEANERS = {
    "numeric": _number,
    "integer": _number,
    "boolean": _boolean,
    "datetime": _datetime,
    "json": _json,
}


def _check_count(count: int) -> None:
    if count < 1:
        raise _invalid(_("Send at least one row."), code="no_rows")
    if count > MAX_ROWS:
        raise _invalid(
            _(
                "%(count)s rows is more than the %(limit)s a request may hold; "
                "split the request or use a batch prediction."
            )
            % {"count": f"{count:,}", "limit": f"{MAX_ROWS:,}"},
            code="too_many_rows",
            details={"rows": count, "limit": MAX_ROWS},
        )


def _wrong(
    field: InputField, row: int, value: Any, *, expected: str | None = None
) -> ApplicationError:
    shown = json.dumps(value, default=str)[:60] if not isinstance(value, float) else repr(value)
    expected = expected or field.expected
    return _invalid(
        _("Row %(row)s, field “%(field)s”: expected %(expected)s, got %(value)s.")
        % {"row": row, "field": field.name, "expected": expected, "value": shown},
        code="wrong_type",
        details={"row": row, "field": field.name, "expected": expected},
    )


def _invalid(message: str, *, code: str = "invalid", details: dict | None = None):
    return ApplicationError(message, code=code, details=details)
