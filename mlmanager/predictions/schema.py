"""A model version's inputs as a schema, and request rows checked against it.

The request path works column by column with numpy: a column whose values are all plain numbers
(or all text) is accepted in one vectorised step, and only mixed columns are looked at value by
value, so a 10 000-row request costs milliseconds here. Every refusal names the row and the
field, in words a user understands.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from collections.abc import Iterable
from typing import Any

import numpy as np
from django.utils.translation import gettext as _

from mlmanager.core.errors import ApplicationError

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


@dataclasses.dataclass(frozen=True)
class InputField:
    name: str
    type: str  # a profiling column type

    @property
    def expected(self) -> str:
        return _EXPECTED.get(self.type, "a text or a number")


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

    @classmethod
    def of_version(cls, inputs: list[dict[str, Any]]) -> InputSchema:
        return cls(InputField(str(item["name"]), str(item.get("type", ""))) for item in inputs)

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
        columns = {
            field.name: self._column(field, [row.get(field.name) for row in rows])
            for field in self.fields
        }
        return ParsedRows(columns, len(rows), payload_rows=rows, payload_columns=None)

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
        parsed = {
            field.name: self._column(field, columns.get(field.name) or [None] * count)
            for field in self.fields
        }
        return ParsedRows(parsed, count, payload_rows=None, payload_columns=columns)

    def _check_names(self, names: set[str]) -> None:
        unknown = sorted(str(name) for name in names - self.by_name.keys())
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

    # --- the web form ------------------------------------------------------------------------

    def clean_value(self, field: InputField, value: Any) -> Any:
        """One form value (text) as the model takes it; ValueError with the expectation."""
        if value in (None, ""):
            return None
        try:
            return _CLEANERS.get(field.type, _scalar)(value)
        except (TypeError, ValueError):
            raise ValueError(_("Expected %(what)s.") % {"what": field.expected}) from None


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


def _wrong(field: InputField, row: int, value: Any) -> ApplicationError:
    shown = json.dumps(value, default=str)[:60] if not isinstance(value, float) else repr(value)
    return _invalid(
        _("Row %(row)s, field “%(field)s”: expected %(expected)s, got %(value)s.")
        % {"row": row, "field": field.name, "expected": field.expected, "value": shown},
        code="wrong_type",
        details={"row": row, "field": field.name, "expected": field.expected},
    )


def _invalid(message: str, *, code: str = "invalid", details: dict | None = None):
    return ApplicationError(message, code=code, details=details)
