"""The maths of a model's monitoring signals, on plain values (numpy, no Django).

- **Population stability index** (`psi`) of an input in a window of the prediction log
  against the training data's profile (`expected_distribution` reads a datasets profile
  column): numeric inputs are binned on the profile histogram's edges (values outside the
  training range fall in the first or last bin, as usual for PSI), categorical ones on the
  profile's top values plus "other". Empty bins take `EPSILON` so the logarithm stays finite.
  `psi_state`: ok below 0.1, warning from 0.1 to 0.2, drift above 0.2 (the usual reading).
- **Accuracy on feedback** (`accuracy`): the share of correct answers among rows with a true
  value. Classes: the predicted label equals the true one. Amounts: the prediction lies within
  `REGRESSION_TOLERANCE` (10 %) of the true value — R² is unstable on the small windows a
  rule watches, a share within tolerance reads the same way as a classification accuracy.
- `percentile` (latency) and `category_key` (how a value is matched against a profile's top
  values and a class label).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

EPSILON = 1e-4
PSI_WARNING = 0.1
PSI_DRIFT = 0.2
REGRESSION_TOLERANCE = 0.1
OTHER = "other"
NUMERIC_TYPES = frozenset({"numeric", "integer"})
CATEGORICAL_TYPES = frozenset({"categorical", "boolean", "text"})

__all__ = [
    "EPSILON",
    "OTHER",
    "PSI_DRIFT",
    "PSI_WARNING",
    "REGRESSION_TOLERANCE",
    "Distribution",
    "accuracy",
    "category_key",
    "compare",
    "expected_distribution",
    "finite_numbers",
    "mean",
    "percentile",
    "psi",
    "psi_state",
]


def category_key(value: Any) -> str:
    """A value as the profile's top values and the prediction log's labels spell it: booleans
    as JSON writes them, whole floats without ".0" (the profile writes 3, not 3.0)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass(frozen=True)
class Distribution:
    """The training distribution of one input: bins (numeric `edges`, or `categories` ending
    with OTHER) and the training row count in each."""

    kind: str  # "numeric" | "categorical"
    counts: tuple[float, ...]
    edges: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()

    @property
    def shares(self) -> np.ndarray:
        counts = np.asarray(self.counts, dtype=np.float64)
        total = counts.sum()
        return counts / total if total > 0 else counts

    @property
    def labels(self) -> list[str]:
        if self.kind == "categorical":
            return list(self.categories)
        return [
            f"{low:g} – {high:g}" for low, high in zip(self.edges, self.edges[1:], strict=False)
        ]

    def bin_counts(self, values: Iterable[Any]) -> np.ndarray:
        """How many of `values` fall in each bin (missing and unreadable values are left out)."""
        if self.kind == "categorical":
            index = {category: position for position, category in enumerate(self.categories)}
            counts = np.zeros(len(self.categories), dtype=np.float64)
            for value in values:
                if value is None or value == "":
                    continue
                counts[index.get(category_key(value), len(self.categories) - 1)] += 1
            return counts
        numbers = finite_numbers(values)
        edges = np.asarray(self.edges, dtype=np.float64)
        if not len(numbers):
            return np.zeros(len(edges) - 1, dtype=np.float64)
        # Open-ended first and last bins: a value beyond the training range still counts.
        inner = np.searchsorted(edges[1:-1], numbers, side="right")
        return np.bincount(inner, minlength=len(edges) - 1).astype(np.float64)


def expected_distribution(column: dict[str, Any] | None) -> Distribution | None:
    """The training distribution of a datasets profile column (`{"type", "stats"}`), or None
    when the profile has none to compare with (dates, JSON, empty columns)."""
    if not column:
        return None
    stats = column.get("stats") or {}
    if column.get("type") in NUMERIC_TYPES:
        histogram = stats.get("histogram") or {}
        edges = histogram.get("edges") or []
        counts = histogram.get("counts") or []
        if len(edges) < 2 or len(counts) != len(edges) - 1 or not sum(counts):
            return None
        return Distribution(
            "numeric", counts=tuple(float(c) for c in counts), edges=tuple(map(float, edges))
        )
    if column.get("type") in CATEGORICAL_TYPES:
        top = stats.get("top_values") or []
        if not top:
            return None
        categories = (*(str(item["value"]) for item in top), OTHER)
        other = float(stats.get("other_count") or 0)
        counts = (*(float(item["count"]) for item in top), other)
        return Distribution("categorical", counts=counts, categories=categories)
    return None


def psi(expected: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray) -> float:
    """Population stability index of `actual` against `expected` (counts or shares per bin,
    same bins): Σ (a − e) · ln(a / e) over the shares, an empty bin's share taken as EPSILON."""
    expected_shares = _shares(expected)
    actual_shares = _shares(actual)
    if expected_shares.shape != actual_shares.shape:
        raise ValueError("expected and actual need the same bins")
    expected_shares = np.where(expected_shares > 0, expected_shares, EPSILON)
    actual_shares = np.where(actual_shares > 0, actual_shares, EPSILON)
    return float(
        np.sum((actual_shares - expected_shares) * np.log(actual_shares / expected_shares))
    )


def psi_state(value: float | None) -> str | None:
    """ok (< 0.1), warning (0.1 – 0.2) or drift (> 0.2); None without a value."""
    if value is None:
        return None
    if value < PSI_WARNING:
        return "ok"
    if value <= PSI_DRIFT:
        return "warning"
    return "drift"


def compare(distribution: Distribution, values: Iterable[Any]) -> dict[str, Any]:
    """The window's values against training: the bins' labels, both share lists, the row count
    and the PSI (None when no value of the window falls in a bin)."""
    counts = distribution.bin_counts(values)
    count = int(counts.sum())
    return {
        "kind": distribution.kind,
        "labels": distribution.labels,
        "edges": list(distribution.edges),
        "expected": [float(share) for share in distribution.shares],
        "actual": [float(share) for share in _shares(counts)],
        "count": count,
        "psi": psi(distribution.counts, counts) if count else None,
    }


def accuracy(pairs: Iterable[tuple[Any, Any]], *, task: str) -> tuple[float | None, int]:
    """(share correct, number of pairs) of (predicted, true) pairs; None for no pairs.
    Classes match by `category_key`; amounts are correct within REGRESSION_TOLERANCE of the
    true value (a true value of 0 needs an exact 0)."""
    hits = total = 0
    for predicted, actual in pairs:
        if predicted is None or actual is None:
            continue
        if task == "regression":
            try:
                guess, truth = float(predicted), float(actual)
            except (TypeError, ValueError):
                continue
            if not (math.isfinite(guess) and math.isfinite(truth)):
                continue
            hits += abs(guess - truth) <= REGRESSION_TOLERANCE * abs(truth)
        else:
            hits += category_key(predicted) == category_key(actual)
        total += 1
    return (hits / total if total else None), total


def mean(values: Iterable[Any]) -> float | None:
    """The mean of the finite numbers among `values`; None for none."""
    numbers = finite_numbers(values)
    return float(numbers.mean()) if len(numbers) else None


def percentile(values: Iterable[float], q: float) -> float | None:
    """The q-th percentile (0–100, linear interpolation) of the finite values; None for none."""
    numbers = finite_numbers(values)
    if not len(numbers):
        return None
    return float(np.percentile(numbers, q))


def finite_numbers(values: Iterable[Any]) -> np.ndarray:
    """The finite numbers among `values` (numeric text too; booleans, None and the rest left
    out)."""
    numbers = []
    for value in values:
        if value is None or isinstance(value, bool | dict | list):
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            numbers.append(number)
    return np.asarray(numbers, dtype=np.float64)


def _shares(counts: Sequence[float] | np.ndarray) -> np.ndarray:
    array = np.asarray(counts, dtype=np.float64)
    total = array.sum()
    return array / total if total > 0 else array
