"""Turn raw input columns, as stored in the Parquet file, into the numeric matrix models learn on.

The preprocessor is built from the input column types and is saved inside the model, so a
prediction takes raw values (a form, an API call, a batch file) and goes through exactly the
same steps. Every step copes with missing values and with values never seen in training.

The classes here are pickled into model artifacts: renaming or moving them breaks loading of
models already saved, so keep their import paths stable.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from mlmanager.engine.profiling import _DATE_FORMATS  # the day-first/month-first formats known

# Categories with at most this many levels are one-hot encoded; more get frequency + rank codes.
ONE_HOT_MAX_LEVELS = 30
# A level seen fewer times than this in training shares one "rare" rank code.
RARE_LEVEL_MAX_COUNT = 1
TEXT_HASH_FEATURES = 2**12
MISSING_TEXT = "(missing)"
DATETIME_PARTS = ("year", "month", "day", "dayofweek", "hour", "epoch_seconds")
_TRUE_TEXTS = frozenset({"true", "t", "yes", "y", "1", "1.0"})
_FALSE_TEXTS = frozenset({"false", "f", "no", "n", "0", "0.0"})
_DATE_SAMPLE = 1_000
_DATE_MIN_PARSED_SHARE = 0.9
# as_text converts arrays up to this long value by value (short serving requests).
_AS_TEXT_LOOP_MAX = 64


def build_preprocessor(inputs: list[tuple[str, str]], frame: pd.DataFrame) -> Pipeline:
    """An unfitted pipeline for the usable `inputs`; `frame` (training rows) decides whether
    each categorical column is one-hot or frequency encoded."""
    by_kind: dict[str, list[str]] = {}
    for name, kind in inputs:
        if kind == "categorical":
            levels = pd.Series(as_text(frame[name])).nunique()
            kind = "categorical_low" if levels <= ONE_HOT_MAX_LEVELS else "categorical_high"
        by_kind.setdefault(kind, []).append(name)
    steps: list[tuple[str, Any, Any]] = []
    if numbers := by_kind.get("numeric", []) + by_kind.get("integer", []):
        steps.append(("numbers", _imputed(NumberValues(), "median"), numbers))
    if booleans := by_kind.get("boolean"):
        steps.append(("booleans", _imputed(BooleanValues(), "most_frequent"), booleans))
    if low := by_kind.get("categorical_low"):
        encoder = OneHotEncoder(handle_unknown="ignore", dtype=np.float32)
        steps.append(("categories", Pipeline([("text", TextValues()), ("onehot", encoder)]), low))
    if high := by_kind.get("categorical_high"):
        steps.append(("many_categories", FrequencyEncoder(), high))
    if dates := by_kind.get("datetime"):
        steps.append(("dates", _imputed(DatetimeParts(), "median"), dates))
    for name in by_kind.get("text", []) + by_kind.get("json", []):
        hashing = HashingVectorizer(
            n_features=TEXT_HASH_FEATURES, alternate_sign=False, dtype=np.float32
        )
        # A bare column name (not a list) hands the vectorizer one 1-D column of documents.
        steps.append(
            (f"text_{len(steps)}", Pipeline([("text", Documents()), ("hash", hashing)]), name)
        )
    if not steps:
        raise ValueError("no usable input columns")
    return Pipeline(
        [
            ("columns", ColumnTransformer(steps, remainder="drop", sparse_threshold=0.3)),
            # Trees ignore scale; the linear models need it. with_mean=False keeps sparse sparse.
            ("scale", StandardScaler(with_mean=False)),
            ("float32", FunctionTransformer(to_float32, accept_sparse=True)),
        ]
    )


def to_float32(matrix: Any) -> Any:
    if sp.issparse(matrix):
        return matrix.astype(np.float32).tocsr()
    return np.asarray(matrix, dtype=np.float32)


def _imputed(values: BaseEstimator, strategy: str) -> Pipeline:
    imputer = SimpleImputer(strategy=strategy, add_indicator=True, keep_empty_features=True)
    return Pipeline([("values", values), ("impute", imputer)])


def as_text(values: Any) -> np.ndarray:
    """Each value as the text a person would type, missing values as MISSING_TEXT.

    3.0 and 3 both become "3", so a category read as float (because of a missing value) in
    training still matches "3" typed into a form.
    """
    if len(values) <= _AS_TEXT_LOOP_MAX:  # factorize costs ~0.1 ms a call, a loop less here
        return np.array(
            [MISSING_TEXT if pd.isna(value) else _text(value) for value in values], dtype=object
        )
    codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
    texts = [_text(value) for value in uniques]
    # Code -1 (missing) picks the last element.
    return np.array([*texts, MISSING_TEXT], dtype=object)[codes]


def _text(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return MISSING_TEXT
        if math.isfinite(value) and float(value).is_integer():
            return str(int(value))
        return repr(float(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, dt.datetime | dt.date | pd.Timestamp):
        return value.isoformat()
    text = str(value).strip()
    return text if text else MISSING_TEXT


def _columns(frame: Any) -> list[pd.Series]:
    if isinstance(frame, pd.DataFrame):
        return [frame.iloc[:, index] for index in range(frame.shape[1])]
    array = np.asarray(frame, dtype=object)
    if array.ndim == 1:
        return [pd.Series(array)]
    return [pd.Series(array[:, index]) for index in range(array.shape[1])]


class NumberValues(TransformerMixin, BaseEstimator):
    """Numbers as floats; text that is not a number, and infinities, become missing."""

    def fit(self, frame: Any, y: Any = None) -> NumberValues:
        return self

    def transform(self, frame: Any) -> np.ndarray:
        columns = [_numbers(column) for column in _columns(frame)]
        return np.column_stack(columns) if columns else np.empty((0, 0))


def _numbers(column: pd.Series) -> np.ndarray:
    if column.dtype == bool:
        return column.to_numpy(dtype=np.float64)
    if isinstance(column.dtype, pd.CategoricalDtype):  # Arrow dictionary columns
        column = column.astype(object)
    numbers = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return np.where(np.isfinite(numbers), numbers, np.nan)


class BooleanValues(TransformerMixin, BaseEstimator):
    """yes/no, true/false, 1/0 and the like as 1.0/0.0.

    A column a user called boolean whose values are none of these (say "male"/"female") gets
    its own two values mapped, in sorted order, when training sees them.
    """

    def fit(self, frame: Any, y: Any = None) -> BooleanValues:
        self.own_values_: list[dict[str, float]] = []
        for column in _columns(frame):
            texts = np.char.lower(as_text(column).astype(str))
            present = texts[texts != MISSING_TEXT.lower()]
            known = np.isin(present, list(_TRUE_TEXTS | _FALSE_TEXTS))
            mapping: dict[str, float] = {}
            if len(present) and known.mean() < 0.5:
                for index, value in enumerate(sorted(set(present.tolist()))[:2]):
                    mapping[value] = float(index)
            self.own_values_.append(mapping)
        return self

    def transform(self, frame: Any) -> np.ndarray:
        return np.column_stack(
            [
                _boolean_numbers(column, mapping)
                for column, mapping in zip(_columns(frame), self.own_values_, strict=True)
            ]
        )


def _boolean_numbers(values: Any, mapping: dict[str, float]) -> np.ndarray:
    """One boolean column as 1.0/0.0 (NaN when missing or not a yes/no value)."""
    texts = np.char.lower(as_text(values).astype(str))
    numbers = np.full(len(texts), np.nan)
    if mapping:
        for text, number in mapping.items():
            numbers[texts == text] = number
    else:
        numbers[np.isin(texts, list(_TRUE_TEXTS))] = 1.0
        numbers[np.isin(texts, list(_FALSE_TEXTS))] = 0.0
    return numbers


class TextValues(TransformerMixin, BaseEstimator):
    """Categories as uniform text (see `as_text`), for the one-hot encoder."""

    def fit(self, frame: Any, y: Any = None) -> TextValues:
        return self

    def transform(self, frame: Any) -> np.ndarray:
        return np.column_stack([as_text(column) for column in _columns(frame)])


class Documents(TransformerMixin, BaseEstimator):
    """One text column as a list of documents; missing values are empty documents."""

    def fit(self, column: Any, y: Any = None) -> Documents:
        return self

    def transform(self, column: Any) -> list[str]:
        texts = as_text(_columns(column)[0])
        return ["" if text == MISSING_TEXT else text for text in texts]


class FrequencyEncoder(TransformerMixin, BaseEstimator):
    """Two numbers per high-cardinality category: how common the level was in training, and
    its rank by frequency (rare and unseen levels share the last rank).

    Unlike one-hot encoding this stays two columns wide whether a column has 50 or 100 000
    levels, and keeps only the levels seen in training.
    """

    def fit(self, frame: Any, y: Any = None) -> FrequencyEncoder:
        # Per column: the levels by falling count (ties by text, so the same data gives the
        # same ranks), each level's share of the rows, and how many levels are not rare.
        self.levels_: list[pd.Index] = []
        self.shares_: list[np.ndarray] = []
        self.frequent_counts_: list[int] = []
        for column in _columns(frame):
            counts = pd.Series(as_text(column)).value_counts()
            order = np.lexsort((counts.index.to_numpy(dtype=str), -counts.to_numpy()))
            counts = counts.iloc[order]
            self.levels_.append(pd.Index(counts.index.astype(object)))
            self.shares_.append(counts.to_numpy(dtype=np.float64) / max(1, len(column)))
            self.frequent_counts_.append(int((counts.to_numpy() > RARE_LEVEL_MAX_COUNT).sum()))
        return self

    def transform(self, frame: Any) -> np.ndarray:
        result: list[np.ndarray] = []
        for column, levels, shares, frequent in zip(
            _columns(frame), self.levels_, self.shares_, self.frequent_counts_, strict=True
        ):
            positions = levels.get_indexer(pd.Index(as_text(column)))
            known = positions >= 0
            result.append(np.where(known, shares[positions], 0.0))
            # Rare levels sort last, so a position past the frequent ones means "rare".
            result.append(np.where(known, np.minimum(positions, frequent), frequent))
        return np.column_stack(result).astype(np.float64)


class DatetimeParts(TransformerMixin, BaseEstimator):
    """Dates and times as year, month, day, day of week, hour and seconds since 1970 (UTC).

    Dates stored as text are parsed with the first format that reads most of the training
    values; values that do not parse are missing.
    """

    def fit(self, frame: Any, y: Any = None) -> DatetimeParts:
        self.formats_ = [_date_format(column) for column in _columns(frame)]
        return self

    def transform(self, frame: Any) -> np.ndarray:
        result: list[np.ndarray] = []
        for column, date_format in zip(_columns(frame), self.formats_, strict=True):
            result.extend(_date_parts(column, date_format))
        return np.column_stack(result)


def _date_parts(column: pd.Series, date_format: str | None) -> list[np.ndarray]:
    """DATETIME_PARTS of each value of `column`, as float columns (NaN when missing)."""
    moments = _parse_dates(column, date_format)
    epoch = (moments - pd.Timestamp("1970-01-01")).dt.total_seconds()
    parts = [
        moments.dt.year,
        moments.dt.month,
        moments.dt.day,
        moments.dt.day_of_week,
        moments.dt.hour,
        epoch,
    ]
    return [part.to_numpy(dtype=np.float64, na_value=np.nan) for part in parts]


def _date_format(column: pd.Series) -> str | None:
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        return None
    present = column.dropna()
    sample = present.iloc[:: max(1, len(present) // _DATE_SAMPLE)].astype(str)
    if not len(sample):
        return "ISO8601"
    best, best_share = "ISO8601", -1.0
    for date_format in ("ISO8601", *_DATE_FORMATS):
        parsed = pd.to_datetime(sample, format=date_format, errors="coerce", utc=True)
        share = float(parsed.notna().mean())
        if share > best_share:
            best, best_share = date_format, share
        if share >= _DATE_MIN_PARSED_SHARE:
            break
    return best


def _parse_dates(column: pd.Series, date_format: str | None) -> pd.Series:
    if date_format is None and pd.api.types.is_datetime64_any_dtype(column.dtype):
        moments = pd.to_datetime(column, utc=True)
    else:
        texts = column.astype(object).where(column.notna(), None).astype(str)
        moments = pd.to_datetime(texts, format=date_format or "ISO8601", errors="coerce", utc=True)
    return pd.Series(moments.dt.tz_localize(None), index=None).reset_index(drop=True)


# --- the few-row path ---------------------------------------------------------------------------


class RowTransform:
    """The fitted preprocessor replayed with plain NumPy for a few rows: the same numbers as
    `Pipeline.transform`, without scikit-learn's per-call overhead (column selection through
    pandas, input validation, joblib), which dominates a one-row prediction.

    Built from a fitted pipeline by `compile_rows`; not pickled (models rebuild it on load).
    """

    def __init__(self, blocks: list, sparse_output: bool, scale: np.ndarray | None):
        self.blocks = blocks
        self.sparse_output = sparse_output
        self.scale = scale

    def transform(self, columns: dict[str, np.ndarray], rows: int) -> Any:
        parts = [block(columns, rows) for block in self.blocks]
        if self.sparse_output:
            matrix: Any = sp.hstack([sp.csr_matrix(part) for part in parts]).tocsr()
            if self.scale is not None:
                matrix = matrix.multiply(1 / self.scale).tocsr()
            return to_float32(matrix)
        dense = np.hstack(
            [part.toarray() if sp.issparse(part) else np.asarray(part) for part in parts]
        )
        if dense.dtype.kind != "f":
            dense = dense.astype(np.float64)
        if self.scale is not None:
            dense /= self.scale
        return to_float32(dense)


def compile_rows(pipeline: Any) -> RowTransform | None:
    """A `RowTransform` for a fitted `build_preprocessor` pipeline; None if its shape is not
    the one built here (then callers use the pipeline itself)."""
    try:
        steps = dict(pipeline.steps)
        columns, scaler = steps["columns"], steps["scale"]
        if not isinstance(columns, ColumnTransformer) or not isinstance(scaler, StandardScaler):
            return None
        blocks = []
        for name, transformer, selection in columns.transformers_:
            if transformer == "drop" or name == "remainder":
                if transformer == "drop":
                    continue
                return None
            block = _compile_block(transformer, selection)
            if block is None:
                return None
            blocks.append(block)
        scale = getattr(scaler, "scale_", None)
        return RowTransform(blocks, bool(columns.sparse_output_), scale)
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


def _compile_block(transformer: Any, selection: Any) -> Any:
    names = [selection] if isinstance(selection, str) else list(selection)
    if isinstance(transformer, FrequencyEncoder):
        return _frequency_block(transformer, names)
    if not isinstance(transformer, Pipeline):
        return None
    first, last = transformer.steps[0][1], transformer.steps[-1][1]
    if len(transformer.steps) == 2 and isinstance(last, SimpleImputer):
        if isinstance(first, NumberValues):
            return _imputed_block(names, _number_columns, last)
        if isinstance(first, BooleanValues):
            return _imputed_block(names, _boolean_columns(first), last)
        if isinstance(first, DatetimeParts):
            return _imputed_block(names, _date_columns(first), last)
        return None
    if (
        len(transformer.steps) == 2
        and isinstance(first, TextValues)
        and isinstance(last, OneHotEncoder)
    ):
        return _one_hot_block(last, names)
    if isinstance(selection, str):  # a text column: its own pipeline on one 1-D column

        def text_block(columns: dict[str, np.ndarray], rows: int) -> Any:
            return transformer.transform(pd.Series(columns[selection], dtype=object))

        return text_block
    return None


def _imputed_block(names: list[str], values: Any, imputer: SimpleImputer) -> Any:
    statistics = np.asarray(imputer.statistics_, dtype=np.float64)
    indicator = getattr(imputer, "indicator_", None)
    flagged = np.asarray(indicator.features_) if indicator is not None else None

    def block(columns: dict[str, np.ndarray], rows: int) -> np.ndarray:
        raw = np.asarray(values(columns, names), dtype=np.float64).reshape(rows, -1)
        missing = np.isnan(raw)
        filled = np.where(missing, statistics, raw)
        if flagged is None:
            return filled
        return np.hstack([filled, missing[:, flagged].astype(np.float64)])

    return block


def _boolean_columns(booleans: BooleanValues) -> Any:
    def transform(columns: dict[str, np.ndarray], names: list[str]) -> np.ndarray:
        return np.column_stack(
            [
                _boolean_numbers(columns[name], mapping)
                for name, mapping in zip(names, booleans.own_values_, strict=True)
            ]
        )

    return transform


def _number_columns(columns: dict[str, np.ndarray], names: list[str]) -> np.ndarray:
    result = []
    for name in names:
        values = columns[name]
        if values.dtype.kind in "biuf":
            numbers = values.astype(np.float64)
        else:
            numbers = _numbers(pd.Series(values, dtype=object))
        result.append(np.where(np.isfinite(numbers), numbers, np.nan))
    return np.column_stack(result)


def _date_columns(parts: DatetimeParts) -> Any:
    def transform(columns: dict[str, np.ndarray], names: list[str]) -> np.ndarray:
        result: list[np.ndarray] = []
        for name, date_format in zip(names, parts.formats_, strict=True):
            values = np.asarray(columns[name], dtype=object)
            parsed = [_one_date(value, date_format) for value in values]
            if any(moment is _UNPARSED for moment in parsed):  # leave odd cases to pandas
                result.extend(_date_parts(pd.Series(columns[name]), date_format))
                continue
            for index in range(len(DATETIME_PARTS)):
                result.append(
                    np.array(
                        [np.nan if m is None else _date_part(m, index) for m in parsed],
                        dtype=np.float64,
                    )
                )
        return np.column_stack(result)

    return transform


_UNPARSED = object()
_SIMPLE_ISO = re.compile(
    r"\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?(Z|[+-]\d{2}:\d{2})?$"
)
_EPOCH = dt.datetime(1970, 1, 1)


def _one_date(value: Any, date_format: str | None) -> Any:
    """A naive UTC datetime, None for a missing value, _UNPARSED when unsure."""
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp | dt.datetime | np.datetime64):
        return _UNPARSED  # typed dates: pandas' own conversion is exact and cheap enough
    if not isinstance(value, str) or date_format not in (None, "ISO8601"):
        return _UNPARSED
    if not _SIMPLE_ISO.match(value.strip()):
        return _UNPARSED
    try:
        moment = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return _UNPARSED
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment


def _date_part(moment: dt.datetime, index: int) -> float:
    if index == 0:
        return float(moment.year)
    if index == 1:
        return float(moment.month)
    if index == 2:
        return float(moment.day)
    if index == 3:
        return float(moment.weekday())
    if index == 4:
        return float(moment.hour)
    return (moment - _EPOCH).total_seconds()


def _one_hot_block(encoder: OneHotEncoder, names: list[str]) -> Any:
    if encoder.drop is not None or getattr(encoder, "_infrequent_enabled", False):
        raise ValueError("unsupported encoder")
    lookups = [
        {category: index for index, category in enumerate(categories)}
        for categories in encoder.categories_
    ]
    offsets = np.cumsum([0] + [len(categories) for categories in encoder.categories_])

    def block(columns: dict[str, np.ndarray], rows: int) -> Any:
        result = np.zeros((rows, offsets[-1]), dtype=np.float32)
        every_row = np.arange(rows)
        for offset, name, lookup in zip(offsets[:-1], names, lookups, strict=True):
            indices = np.fromiter(
                (lookup.get(text, -1) for text in as_text(columns[name])), np.int64, rows
            )
            seen = indices >= 0  # unseen categories stay all zeros, as handle_unknown="ignore"
            result[every_row[seen], offset + indices[seen]] = 1.0
        return result

    return block


def _frequency_block(encoder: FrequencyEncoder, names: list[str]) -> Any:
    lookups = [{level: index for index, level in enumerate(levels)} for levels in encoder.levels_]

    def block(columns: dict[str, np.ndarray], rows: int) -> np.ndarray:
        result: list[np.ndarray] = []
        for name, lookup, shares, frequent in zip(
            names, lookups, encoder.shares_, encoder.frequent_counts_, strict=True
        ):
            positions = np.array([lookup.get(text, -1) for text in as_text(columns[name])])
            known = positions >= 0
            result.append(np.where(known, shares[positions], 0.0))
            result.append(np.where(known, np.minimum(positions, frequent), frequent))
        return np.column_stack(result).astype(np.float64)

    return block
