"""How strongly each column of a table goes with one chosen output: correlation and mutual
information, on a bounded sample of rows.

Correlation, by the kinds of the two columns (numbers: numeric and integer types; categories:
categorical and boolean):
- number with number: Pearson's r (signed, -1..1);
- category with number: the correlation ratio η (0..1), the share of the number's spread
  the categories explain, square-rooted;
- category with category: Cramér's V (0..1).
Mutual information (in nats) is scikit-learn's `mutual_info_regression` for a number output
and `mutual_info_classif` for a category output, categories as discrete features, with a
fixed random state. Rows whose output is missing are left out; missing numbers are filled with
the median, missing categories are a category of their own. Dates count as numbers (their
time). Text, JSON, identifiers, constant and empty columns get neither (null): they carry
nothing these measures can read.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

MAX_SAMPLE_ROWS = 20_000
NUMBER_TYPES = frozenset({"numeric", "integer"})
CATEGORY_TYPES = frozenset({"categorical", "boolean"})
MEASURED_TYPES = NUMBER_TYPES | CATEGORY_TYPES | {"datetime"}
SEED = 0


def sample_rows(path: Path, columns: list[str], *, limit: int = MAX_SAMPLE_ROWS) -> pd.DataFrame:
    """`columns` of at most `limit` rows of the Parquet file, drawn at random (fixed seed)."""
    table = pq.read_table(path, columns=columns)
    if table.num_rows > limit:
        indices = np.sort(np.random.default_rng(SEED).choice(table.num_rows, limit, replace=False))
        table = table.take(indices)
    return table.to_pandas()


def column_relations(
    frame: pd.DataFrame, *, output: str, types: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Per column of `frame` other than `output`: `{name, correlation, method,
    mutual_information}`, highest mutual information first (nulls last, then by name)."""
    from sklearn.feature_selection import mutual_info_classif, mutual_info_regression

    output_type = types[output]
    target_raw = frame[output]
    present = target_raw.notna()
    frame = frame[present]
    output_is_number = output_type in NUMBER_TYPES
    target = (
        pd.to_numeric(frame[output], errors="coerce").to_numpy(dtype=float)
        if output_is_number
        else _codes(frame[output])
    )
    rows: list[dict[str, Any]] = []
    features: list[np.ndarray] = []
    discrete: list[bool] = []
    measured: list[int] = []
    for name in frame.columns:
        if name == output:
            continue
        kind = types.get(name, "")
        row: dict[str, Any] = {
            "name": name,
            "correlation": None,
            "method": None,
            "mutual_information": None,
        }
        rows.append(row)
        if kind not in MEASURED_TYPES or len(frame) < 3:
            continue
        series = frame[name]
        if kind in CATEGORY_TYPES:
            codes = _codes(series)
            if output_is_number:
                row["correlation"], row["method"] = _eta(codes, target), "correlation_ratio"
            else:
                row["correlation"], row["method"] = _cramers_v(codes, target), "cramers_v"
            features.append(codes.astype(float))
            discrete.append(True)
        else:
            numbers = _numbers(series, kind)
            if output_is_number:
                row["correlation"], row["method"] = _pearson(numbers, target), "pearson"
            else:
                row["correlation"], row["method"] = _eta(target, numbers), "correlation_ratio"
            features.append(numbers)
            discrete.append(False)
        measured.append(len(rows) - 1)
    if features and len(frame) >= 4:
        matrix = np.column_stack(features)
        neighbours = min(3, len(frame) - 1)
        if output_is_number:
            scores = mutual_info_regression(
                matrix,
                target,
                discrete_features=np.array(discrete),
                n_neighbors=neighbours,
                random_state=SEED,
            )
        else:
            scores = mutual_info_classif(
                matrix,
                target,
                discrete_features=np.array(discrete),
                n_neighbors=neighbours,
                random_state=SEED,
            )
        for index, score in zip(measured, scores, strict=True):
            rows[index]["mutual_information"] = _finite(float(score))
    rows.sort(
        key=lambda row: (
            row["mutual_information"] is None,
            -(row["mutual_information"] or 0.0),
            row["name"],
        )
    )
    return rows


def _finite(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return value


def _codes(series: pd.Series) -> np.ndarray:
    """Categories as integer codes, missing as a category of its own."""
    texts = series.astype(object).where(series.notna(), "\0missing").astype(str)
    return pd.factorize(texts, sort=True)[0].astype(np.int64)


def _numbers(series: pd.Series, kind: str) -> np.ndarray:
    if kind == "datetime":
        moments = pd.to_datetime(series, errors="coerce", utc=True)
        seconds = (moments - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    else:
        seconds = pd.to_numeric(series, errors="coerce")
    numbers = np.array(seconds, dtype=float)  # a writable copy
    numbers[~np.isfinite(numbers)] = np.nan
    if np.isnan(numbers).all():
        return np.zeros(len(numbers))
    return np.where(np.isnan(numbers), np.nanmedian(numbers), numbers)


def _pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    x_dev, y_dev = x - x.mean(), y - y.mean()
    denominator = math.sqrt(float(np.dot(x_dev, x_dev)) * float(np.dot(y_dev, y_dev)))
    if denominator == 0:
        return None
    return _finite(float(np.dot(x_dev, y_dev)) / denominator)


def _eta(categories: np.ndarray, values: np.ndarray) -> float | None:
    """The correlation ratio of `values` by `categories` (integer codes)."""
    total = float(np.sum((values - values.mean()) ** 2))
    if total == 0:
        return None
    counts = np.bincount(categories)
    sums = np.bincount(categories, weights=values)
    present = counts > 0
    means = sums[present] / counts[present]
    between = float(np.sum(counts[present] * (means - values.mean()) ** 2))
    return _finite(math.sqrt(min(between / total, 1.0)))


def _cramers_v(x: np.ndarray, y: np.ndarray) -> float | None:
    table = pd.crosstab(x, y).to_numpy(dtype=float)
    count = table.sum()
    smaller = min(table.shape) - 1
    if smaller == 0 or count == 0:
        return None
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / count
    chi2 = float(np.sum((table - expected) ** 2 / expected))
    return _finite(math.sqrt(chi2 / (count * smaller)))
