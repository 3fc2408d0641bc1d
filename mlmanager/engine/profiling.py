"""Profile a normalised Parquet file: a type, a suggested role and summary statistics per column.

Columns are read one at a time and summarised with pyarrow.compute, so a million-row file takes
seconds and memory holds one column, not the table.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mlmanager.engine.ingest import IngestError, NumberConversion, NumberFormat, parse_numbers

logger = logging.getLogger(__name__)

COLUMN_TYPES = (
    "numeric",
    "integer",
    "categorical",
    "boolean",
    "datetime",
    "text",
    "identifier",
    "constant",
    "empty",
    "json",
)
ROLES = ("input", "output_candidate", "ignore")

# Identifiers: nearly every value distinct, in a column long enough for that to mean something.
IDENTIFIER_MIN_UNIQUE_SHARE = 0.95
IDENTIFIER_MIN_ROWS = 20  # strictly more non-missing values than this
# A text identifier (code, UUID, e-mail) is short and has no spaces; free text has both.
IDENTIFIER_MAX_MEAN_LENGTH = 64
IDENTIFIER_MAX_WHITESPACE_SHARE = 0.05
# An integer identifier counts up (or down), or fills its range densely like a shuffled 1..n;
# a measurement with many distinct values spreads over a much wider range.
IDENTIFIER_MAX_RANGE_PER_VALUE = 1.5
# Categorical: at most this many distinct values, or this share of the values if more.
CATEGORICAL_MIN_LIMIT = 20
CATEGORICAL_MAX_UNIQUE_SHARE = 0.05
BOOLEAN_PAIRS = (
    frozenset({"true", "false"}),
    frozenset({"yes", "no"}),
    frozenset({"0", "1"}),
    frozenset({"t", "f"}),
    frozenset({"y", "n"}),
)
# Strings are checked for dates and JSON on an evenly spread sample of this many values.
SAMPLE_SIZE = 1_000
# Share of sampled strings that must parse as JSON objects or arrays for a "json" column.
JSON_MIN_SHARE = 0.95
# Columns missing at least this share of values are suggested to be ignored.
IGNORE_MISSING_SHARE = 0.95
HISTOGRAM_MAX_BINS = 20
TOP_VALUES = 10
TEXT_TOP_VALUES = 5
JSON_TOP_KEYS = 10
OUTPUT_TYPES = frozenset({"categorical", "boolean", "numeric", "integer"})
TARGET_NAME_WORDS = frozenset({"target", "label", "class", "y", "outcome", "price"})

# Date formats tried, in order, on strings that are not ISO 8601.
_DATE_FORMATS = (
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%d.%m.%Y",
    "%Y/%m/%d",
    "%d-%m-%Y",
    "%d/%m/%Y %H:%M",
    "%m/%d/%Y %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y %H:%M:%S",
)


def profile_parquet(
    path: Path,
    *,
    type_overrides: Mapping[str, str] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    number_format: NumberFormat | None = None,
    missing_tokens: Mapping[str, Mapping[str, int]] | None = None,
) -> dict:
    """Profile every column of the Parquet file at `path`; the result is JSON-serialisable.

    `type_overrides` maps column names to a type from COLUMN_TYPES chosen by the user: the
    statistics and role follow that type, and "detected_type" keeps the detected one. Names
    not in the file are ignored (the file may have changed since they were chosen).
    Text forced to a number type is read in `number_format` (the file's decimal and thousands
    separators): missing-value tokens and cells that are not numbers count as missing, and the
    column's "conversion" says how many of each there were, with examples of the latter.
    `missing_tokens` (column → token → count, as reading found them) is kept in each column's
    "missing_tokens", so the profile says which cells were taken as missing.
    `should_cancel` is polled between columns; it makes the call raise
    IngestError(code="cancelled").
    """
    overrides = dict(type_overrides or {})
    unknown = {value for value in overrides.values() if value not in COLUMN_TYPES}
    if unknown:
        raise ValueError(f"unknown column types: {sorted(unknown)}")
    parquet_file = pq.ParquetFile(path)
    names = parquet_file.schema_arrow.names
    row_count = parquet_file.metadata.num_rows
    columns = []
    for index, name in enumerate(names):
        if should_cancel is not None and should_cancel():
            raise IngestError("Profiling was cancelled.", code="cancelled")
        column = parquet_file.read(columns=[name]).column(0)
        columns.append(
            _profile_column(
                name,
                column,
                row_count=row_count,
                override=overrides.get(name),
                is_last=index == len(names) - 1,
                number_format=number_format or NumberFormat(),
                missing_tokens=(missing_tokens or {}).get(name, {}),
            )
        )
    logger.info("profiled %s: %s rows, %s columns", path, row_count, len(names))
    return {"row_count": row_count, "column_count": len(names), "columns": columns}


def _profile_column(
    name: str,
    column: pa.ChunkedArray,
    *,
    row_count: int,
    override: str | None,
    is_last: bool,
    number_format: NumberFormat,
    missing_tokens: Mapping[str, int],
) -> dict:
    physical_type = str(column.type)
    family, values = _present_values(column)
    unique_count = _count_distinct(family, values)
    detected_type, datetime_parser = _detect_type(family, values, unique_count)
    column_type = override or detected_type
    tokens = Counter(missing_tokens)
    conversion: NumberConversion | None = None
    if column_type in {"numeric", "integer"} and family == "string":
        # Statistics and the missing share are those of the numbers a model would get.
        numbers, conversion = parse_numbers(values, number_format)
        family, values = "float", numbers.drop_null()
        tokens.update(conversion.missing_tokens)
    missing_count = row_count - len(values)
    missing_share = missing_count / row_count if row_count else 0.0
    role, role_reason = _suggest_role(name, column_type, missing_share, is_last=is_last)
    profiled = {
        "name": name,
        "type": column_type,
        "detected_type": detected_type,
        "physical_type": physical_type,
        "missing_count": missing_count,
        "missing_share": missing_share,
        "unique_count": unique_count,
        "role": role,
        "role_reason": role_reason,
        "stats": _stats(column_type, family, values, unique_count, datetime_parser),
        "missing_tokens": dict(sorted(tokens.items(), key=lambda item: (-item[1], item[0]))),
    }
    if conversion is not None:
        profiled["conversion"] = {"type": column_type, "source": "override", **conversion.to_dict()}
    return profiled


def _count_distinct(family: str, values: pa.Array) -> int:
    if not len(values):
        return 0
    if family in {"int", "float", "datetime"}:
        # Sorting is several times faster than Arrow's hash table on high-cardinality numbers.
        ordered = np.sort(values.to_numpy(zero_copy_only=False))
        return int(1 + np.count_nonzero(ordered[1:] != ordered[:-1]))
    return pc.count_distinct(values).as_py()


def _present_values(column: pa.ChunkedArray) -> tuple[str, pa.Array]:
    """Return the column's value family and its non-missing values as one plain array.

    Missing means null, NaN, or a string of only whitespace. Families are "bool", "int",
    "float", "datetime" and "string"; other Arrow types are reduced to one of these.
    """
    array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    arrow_type = array.type
    if pa.types.is_dictionary(arrow_type):
        array = array.dictionary_decode()
        arrow_type = array.type
    if pa.types.is_null(arrow_type):
        return "string", pa.array([], pa.string())
    if pa.types.is_boolean(arrow_type):
        family = "bool"
    elif pa.types.is_integer(arrow_type):
        family = "int"
    elif pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        array = array.cast(pa.float64())
        family = "float"
    elif pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type):
        # Nanoseconds are finer than any profile needs; safe=False drops them instead of failing.
        array = array.cast(pa.timestamp("us", tz=getattr(arrow_type, "tz", None)), safe=False)
        family = "datetime"
    else:
        array = _as_string_array(array)
        family = "string"
    array = array.drop_null()
    if family == "float":
        array = array.filter(pc.invert(pc.is_nan(array)))
    elif family == "string":
        array = array.filter(pc.not_equal(pc.utf8_trim_whitespace(array), ""))
    return family, array


def _as_string_array(array: pa.Array) -> pa.Array:
    if pa.types.is_string(array.type):
        return array
    if pa.types.is_nested(array.type):
        return pa.array(
            [
                None if v is None else json.dumps(v, sort_keys=True, default=str)
                for v in array.to_pylist()
            ],
            pa.string(),
        )
    try:
        return array.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        # Binary that is not UTF-8, and the like: keep a readable form.
        return pa.array([None if v is None else repr(v) for v in array.to_pylist()], pa.string())


# --- type detection --------------------------------------------------------------------------


def _detect_type(
    family: str, values: pa.Array, unique_count: int
) -> tuple[str, Callable[[pa.Array], pa.Array] | None]:
    """Return the column type and, for dates stored as strings, the parser that reads them."""
    count = len(values)
    if count == 0:
        return "empty", None
    if unique_count == 1:
        return "constant", None
    if family == "bool" or (unique_count <= 4 and _is_boolean_pair(family, values)):
        return "boolean", None
    if family == "datetime":
        return "datetime", None
    if family in {"int", "float"}:
        if family == "float" and not _all_whole(values):
            return "numeric", None
        if _looks_like_integer_identifier(values, unique_count):
            return "identifier", None
        return "integer", None
    sample = _sample(values)
    if _looks_like_json(sample):
        return "json", None
    parser = _find_datetime_parser(sample)
    if parser is not None:
        return "datetime", parser
    if _looks_like_text_identifier(values, unique_count):
        return "identifier", None
    if unique_count <= max(CATEGORICAL_MIN_LIMIT, CATEGORICAL_MAX_UNIQUE_SHARE * count):
        return "categorical", None
    return "text", None


def _is_boolean_pair(family: str, values: pa.Array) -> bool:
    if family in {"int", "float"}:
        distinct = {
            str(int(v)) if float(v).is_integer() else str(v) for v in values.unique().to_pylist()
        }
    elif family == "string":
        distinct = set(pc.utf8_lower(pc.utf8_trim_whitespace(values)).unique().to_pylist())
    else:
        return False
    return len(distinct) == 2 and frozenset(distinct) in BOOLEAN_PAIRS


def _all_whole(values: pa.Array) -> bool:
    finite = values.filter(pc.is_finite(values))
    return len(finite) == len(values) and bool(pc.all(pc.equal(finite, pc.floor(finite))).as_py())


def _looks_like_integer_identifier(values: pa.Array, unique_count: int) -> bool:
    count = len(values)
    if count <= IDENTIFIER_MIN_ROWS or unique_count < IDENTIFIER_MIN_UNIQUE_SHARE * count:
        return False
    numbers = values.to_numpy(zero_copy_only=False)
    steps = np.diff(numbers)
    if (steps >= 0).all() or (steps <= 0).all():
        return True
    value_range = float(numbers.max()) - float(numbers.min()) + 1
    return value_range <= IDENTIFIER_MAX_RANGE_PER_VALUE * unique_count


def _looks_like_text_identifier(values: pa.Array, unique_count: int) -> bool:
    count = len(values)
    if count <= IDENTIFIER_MIN_ROWS or unique_count < IDENTIFIER_MIN_UNIQUE_SHARE * count:
        return False
    if pc.mean(pc.utf8_length(values)).as_py() > IDENTIFIER_MAX_MEAN_LENGTH:
        return False
    with_whitespace = pc.sum(pc.match_substring_regex(values, r"\s")).as_py() or 0
    return with_whitespace <= IDENTIFIER_MAX_WHITESPACE_SHARE * count


def _sample(values: pa.Array) -> pa.Array:
    if len(values) <= SAMPLE_SIZE:
        return values
    return values.take(np.linspace(0, len(values) - 1, SAMPLE_SIZE).astype(np.int64))


def _parse_json_container(text: str) -> dict | list | None:
    stripped = text.lstrip()
    if not stripped.startswith(("{", "[")):
        return None
    try:
        value = json.loads(stripped)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict | list) else None


def _looks_like_json(sample: pa.Array) -> bool:
    texts = sample.to_pylist()
    parsed = sum(_parse_json_container(text) is not None for text in texts)
    return parsed >= JSON_MIN_SHARE * len(texts)


def _find_datetime_parser(sample: pa.Array) -> Callable[[pa.Array], pa.Array] | None:
    """Find a way to read every sampled string as a date, or None if there is none."""
    for timezone in (None, "UTC"):
        try:
            sample.cast(pa.timestamp("us", tz=timezone))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        return functools.partial(_parse_iso_datetimes, timezone=timezone)
    for date_format in _DATE_FORMATS:
        parsed = pc.strptime(sample, format=date_format, unit="us", error_is_null=True)
        if parsed.null_count == 0:
            return functools.partial(pc.strptime, format=date_format, unit="us", error_is_null=True)
    return None


def _parse_iso_datetimes(array: pa.Array, timezone: str | None) -> pa.Array:
    try:
        return array.cast(pa.timestamp("us", tz=timezone))
    except pa.ArrowInvalid:
        # Some value beyond the sample is not a date; pandas can skip single values. Read as
        # UTC even for a column without zones: a few values with an offset among naive ones
        # ("Mixed timezones" to pandas otherwise) are then moved to UTC rather than fail.
        parsed = pd.to_datetime(
            pd.Series(array.to_pylist(), dtype="object"),
            errors="coerce",
            format="ISO8601",
            utc=True,
        )
        if timezone is None:
            parsed = parsed.dt.tz_localize(None)
        return pa.array(parsed, from_pandas=True).cast(pa.timestamp("us", tz=timezone), safe=False)


# --- roles -----------------------------------------------------------------------------------


def _suggest_role(
    name: str, column_type: str, missing_share: float, *, is_last: bool
) -> tuple[str, str]:
    if column_type in {"identifier", "constant", "empty"}:
        return "ignore", column_type
    if missing_share >= IGNORE_MISSING_SHARE:
        return "ignore", f"{round(missing_share * 100)} % missing"
    if column_type in OUTPUT_TYPES:
        if _name_looks_like_target(name):
            return "output_candidate", "name looks like a target"
        if is_last:
            return "output_candidate", "last column"
    return "input", ""


def _name_looks_like_target(name: str) -> bool:
    # Split snake_case, kebab-case, spaces and camelCase into lower-case words.
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name).lower()
    return bool(TARGET_NAME_WORDS & set(re.split(r"[^a-z0-9]+", words)))


# --- statistics ------------------------------------------------------------------------------


def _stats(
    column_type: str,
    family: str,
    values: pa.Array,
    unique_count: int,
    datetime_parser: Callable[[pa.Array], pa.Array] | None,
) -> dict[str, Any]:
    if not len(values) or column_type == "empty":
        return {}
    if column_type == "constant":
        return {"value": _text_values(family, values.slice(0, 1))[0].as_py()}
    if column_type in {"numeric", "integer"}:
        return _numeric_stats(_number_values(family, values), integer=column_type == "integer")
    if column_type in {"categorical", "boolean", "identifier"}:
        return _top_values_stats(
            _text_values(family, values), TOP_VALUES, all_distinct=unique_count == len(values)
        )
    if column_type == "text":
        texts = _text_values(family, values)
        lengths = pc.utf8_length(texts)
        return {
            "min_length": pc.min(lengths).as_py(),
            "mean_length": _finite(pc.mean(lengths).as_py()),
            "max_length": pc.max(lengths).as_py(),
            **_top_values_stats(texts, TEXT_TOP_VALUES, all_distinct=unique_count == len(values)),
        }
    if column_type == "datetime":
        return _datetime_stats(_datetime_values(family, values, datetime_parser), unique_count)
    return _json_stats(_text_values(family, values))


def _finite(number: float | None) -> float | None:
    if number is None or not math.isfinite(number):
        return None
    return float(number)


def _text_values(family: str, values: pa.Array) -> pa.Array:
    if family == "float" and _all_whole(values):
        values = values.cast(pa.int64(), safe=False)  # "3" rather than "3.0" for whole floats
    return _as_string_array(values)


def _number_values(family: str, values: pa.Array) -> pa.Array | None:
    if family in {"int", "float"}:
        # Unsafe: a whole number past 2**53 has no exact float; statistics can round it.
        return values.cast(pa.float64(), safe=False)
    if family == "bool":
        return values.cast(pa.float64())
    return None  # text is read by parse_numbers in _profile_column, in the file's format


def _numeric_stats(numbers: pa.Array | None, *, integer: bool) -> dict[str, Any]:
    if numbers is None:
        return {}
    finite_mask = pc.is_finite(numbers)
    infinite_count = len(numbers) - (pc.sum(finite_mask).as_py() or 0)
    numbers = numbers.filter(finite_mask)
    if not len(numbers):
        return {"count": 0, "infinite_count": infinite_count}
    as_number = _whole if integer else _finite
    quartiles = pc.quantile(numbers, q=[0.25, 0.5, 0.75]).to_pylist()
    extremes = pc.min_max(numbers)
    minimum, maximum = extremes["min"].as_py(), extremes["max"].as_py()
    return {
        "count": len(numbers),
        "min": as_number(minimum),
        "max": as_number(maximum),
        "mean": _finite(pc.mean(numbers).as_py()),
        "std": _finite(pc.stddev(numbers, ddof=1).as_py()) if len(numbers) > 1 else None,
        "q25": _finite(quartiles[0]),
        "median": _finite(quartiles[1]),
        "q75": _finite(quartiles[2]),
        "zeros": pc.sum(pc.equal(numbers, 0.0)).as_py() or 0,
        "infinite_count": infinite_count,
        "histogram": _numeric_histogram(numbers, minimum, maximum, integer=integer),
        **shape_stats(numbers.to_numpy(zero_copy_only=False), quartiles[0], quartiles[2]),
    }


def shape_stats(data: np.ndarray, q25: float, q75: float) -> dict[str, Any]:
    """Skewness and excess kurtosis (the sample estimates pandas' `skew()` and `kurt()` give:
    adjusted Fisher-Pearson G1 and G2; None below 3 and 4 values, or for a constant column),
    and the outliers by the 1.5 IQR rule: values below q25 - 1.5 IQR or above q75 + 1.5 IQR
    (quartiles interpolated linearly, as above), their count and share of the finite values."""
    count = len(data)
    with np.errstate(all="ignore"):
        # Moments of the deviations scaled to at most 1: their ratios are the same, and values
        # near the float limit (1e300) cannot overflow when squared.
        deviations = data - data.mean()
        scale = float(np.max(np.abs(deviations))) if count else 0.0
        if math.isfinite(scale) and scale > 0:
            deviations = deviations / scale
        m2 = float(np.mean(deviations**2))
        m3 = float(np.mean(deviations**3))
        m4 = float(np.mean(deviations**4))
    skew = kurtosis = None
    if not math.isfinite(m2):
        m2 = 0.0  # no finite spread to describe: no shape either
    if m2 > 0 and count >= 3:
        skew = _finite(math.sqrt(count * (count - 1)) / (count - 2) * m3 / m2**1.5)
    if m2 > 0 and count >= 4:
        g2 = m4 / m2**2 - 3
        kurtosis = _finite((count - 1) / ((count - 2) * (count - 3)) * ((count + 1) * g2 + 6))
    spread = 1.5 * (q75 - q25)
    low, high = q25 - spread, q75 + spread
    outliers = int(np.count_nonzero((data < low) | (data > high)))
    return {
        "skew": skew,
        "kurtosis": kurtosis,
        "outlier_low": _finite(low),
        "outlier_high": _finite(high),
        "outlier_count": outliers,
        "outlier_share": outliers / count if count else 0.0,
    }


def _whole(number: float) -> int | float | None:
    if not math.isfinite(number):
        return None
    return int(number) if abs(number) < 2**63 else float(number)


def _numeric_histogram(
    numbers: pa.Array, minimum: float, maximum: float, *, integer: bool
) -> dict[str, list]:
    data = numbers.to_numpy(zero_copy_only=False)
    if integer and maximum - minimum < HISTOGRAM_MAX_BINS:
        # One bin per integer value, so bars line up with the values people see.
        bins: Any = np.arange(minimum, maximum + 2)
    else:
        bins = HISTOGRAM_MAX_BINS
    counts, edges = _histogram(data, bins)
    return {"edges": [float(edge) for edge in edges], "counts": [int(c) for c in counts]}


def _histogram(data: np.ndarray, bins: Any) -> tuple[np.ndarray, np.ndarray]:
    """np.histogram, or one bin from the smallest value to the largest where numpy cannot cut
    the range into `bins` finite parts: a range narrower than the floating-point spacing at the
    values' size ("Too many bins for data range"), as with a single timestamp of 2024 in
    microseconds (1.7e15, spacing 0.25) or a column of one large number."""
    try:
        return np.histogram(data, bins=bins)
    except ValueError:
        return np.array([len(data)]), np.array([data.min(), data.max()], dtype=np.float64)


def _top_values_stats(texts: pa.Array, limit: int, *, all_distinct: bool) -> dict[str, Any]:
    if all_distinct:
        # Every value occurs once, so counting them all would only rank ties.
        indices = pc.bottom_k_unstable(texts, k=min(limit, len(texts)))
        firsts = sorted(texts.take(indices).to_pylist())
        return {
            "top_values": [{"value": value, "count": 1} for value in firsts],
            "other_count": len(texts) - len(firsts),
        }
    counted = pc.value_counts(texts)
    table = pa.table({"value": counted.field("values"), "count": counted.field("counts")})
    top = table.take(
        pc.select_k_unstable(
            table,
            k=min(limit, table.num_rows),
            sort_keys=[("count", "descending"), ("value", "ascending")],
        )
    )
    # select_k returns the top rows unordered among equal keys; sort them for stable output.
    top = top.sort_by([("count", "descending"), ("value", "ascending")])
    top_values = [
        {"value": value, "count": count}
        for value, count in zip(top["value"].to_pylist(), top["count"].to_pylist(), strict=True)
    ]
    return {
        "top_values": top_values,
        "other_count": len(texts) - sum(item["count"] for item in top_values),
    }


def _datetime_values(
    family: str, values: pa.Array, parser: Callable[[pa.Array], pa.Array] | None
) -> pa.Array | None:
    if family == "datetime":
        return values
    if family != "string":
        return None
    # A user may call a column dates that are not all dates: parse leniently and count misses.
    parser = (
        parser
        or _find_datetime_parser(_sample(values))
        or functools.partial(_parse_iso_datetimes, timezone=None)
    )
    return parser(values)


def _datetime_stats(timestamps: pa.Array | None, unique_count: int) -> dict[str, Any]:
    if timestamps is None:
        return {}
    unparsed_count = timestamps.null_count
    timestamps = timestamps.drop_null()
    if not len(timestamps):
        return {"unparsed_count": unparsed_count}
    timezone = timestamps.type.tz
    micros = timestamps.cast(pa.int64()).to_numpy(zero_copy_only=False)
    counts, edges = _histogram(micros, max(1, min(HISTOGRAM_MAX_BINS, unique_count)))
    return {
        "min": _iso(int(micros.min()), timezone),
        "max": _iso(int(micros.max()), timezone),
        "unparsed_count": unparsed_count,
        "histogram": {
            "edges": [_iso(round(edge), timezone) for edge in edges],
            "counts": [int(count) for count in counts],
        },
    }


def _iso(microseconds: int, timezone: str | None) -> str | None:
    try:
        moment = dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=microseconds)
    except OverflowError:  # Arrow reaches far beyond Python's year 9999
        return None
    if timezone:
        return moment.replace(tzinfo=dt.UTC).isoformat()
    return moment.isoformat()


def _json_stats(texts: pa.Array) -> dict[str, Any]:
    sample = _sample(texts).to_pylist()
    key_counts: Counter[str] = Counter()
    objects = arrays = 0
    for text in sample:
        value = _parse_json_container(text)
        if isinstance(value, dict):
            objects += 1
            key_counts.update(str(key) for key in value)
        elif isinstance(value, list):
            arrays += 1
    top_keys = sorted(key_counts.items(), key=lambda item: (-item[1], item[0]))[:JSON_TOP_KEYS]
    return {
        "sampled": len(sample),
        "object_count": objects,
        "array_count": arrays,
        "top_keys": [{"key": key, "count": count} for key, count in top_keys],
    }
