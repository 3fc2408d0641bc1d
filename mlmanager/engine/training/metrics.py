"""Scores of predictions in the user's metric, and the full set of holdout metrics.

Predictions are class probabilities (n rows × n classes, columns in class-index order) for
classification and numbers for regression; targets are class indices or numbers.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from sklearn import metrics as sk

from mlmanager.engine.training.spec import higher_is_better

PLOT_POINTS = 500


def score(metric: str, target: np.ndarray, predictions: np.ndarray) -> float:
    """The value of `metric` (in its own units: AUC, RMSE, …) for these predictions."""
    if metric == "rmse":
        return float(np.sqrt(sk.mean_squared_error(target, predictions)))
    if metric == "mae":
        return float(sk.mean_absolute_error(target, predictions))
    if metric == "r2":
        return float(sk.r2_score(target, predictions))
    class_count = predictions.shape[1]
    if metric == "log_loss":
        return float(sk.log_loss(target, predictions, labels=np.arange(class_count)))
    if metric == "roc_auc":
        return float(sk.roc_auc_score(target, predictions[:, 1]))
    chosen = predictions.argmax(axis=1)
    if metric == "accuracy":
        return float(sk.accuracy_score(target, chosen))
    if metric == "balanced_accuracy":
        return float(sk.balanced_accuracy_score(target, chosen))
    if metric == "f1":
        return float(sk.f1_score(target, chosen, pos_label=1, zero_division=0.0))
    if metric == "macro_f1":
        return float(sk.f1_score(target, chosen, average="macro", zero_division=0.0))
    raise ValueError(f"unknown metric {metric}")


def loss(metric: str, target: np.ndarray, predictions: np.ndarray) -> float:
    """`score` turned into something to minimise, as the search does."""
    value = score(metric, target, predictions)
    return -value if higher_is_better(metric) else value


def holdout_metrics(
    task: str,
    target: np.ndarray,
    predictions: np.ndarray,
    *,
    classes: list[Any] | None,
    seed: int,
) -> dict[str, Any]:
    """Every metric shown for a model version, measured on the holdout rows."""
    if task == "regression":
        rng = np.random.default_rng(seed)
        shown = np.sort(rng.permutation(len(target))[:PLOT_POINTS])
        return {
            "rmse": _safe(score, "rmse", target, predictions),
            "mae": _safe(score, "mae", target, predictions),
            "r2": _safe(score, "r2", target, predictions),
            "predicted_vs_actual": {
                "actual": [_finite(value) for value in target[shown]],
                "predicted": [_finite(value) for value in predictions[shown]],
            },
            "holdout_rows": len(target),
        }
    assert classes is not None
    chosen = predictions.argmax(axis=1)
    result: dict[str, Any] = {
        "accuracy": _safe(score, "accuracy", target, predictions),
        "balanced_accuracy": _safe(score, "balanced_accuracy", target, predictions),
    }
    if task == "binary":
        result["f1"] = _safe(score, "f1", target, predictions)
        result["roc_auc"] = _safe(score, "roc_auc", target, predictions)
    else:
        result["macro_f1"] = _safe(score, "macro_f1", target, predictions)
        result["roc_auc"] = _safe(_multiclass_auc, target, predictions)
    result["log_loss"] = _safe(score, "log_loss", target, predictions)
    matrix = sk.confusion_matrix(target, chosen, labels=np.arange(len(classes)))
    result["confusion_matrix"] = {
        "labels": [_json_label(label) for label in classes],
        "matrix": matrix.tolist(),
    }
    result["holdout_rows"] = len(target)
    return result


def is_defined(metric: str, target: np.ndarray, predictions: np.ndarray) -> bool:
    """Whether `metric` has a value on these rows (AUC needs two classes, for one)."""
    return _safe(score, metric, target, predictions) is not None


def _multiclass_auc(target: np.ndarray, predictions: np.ndarray) -> float:
    present = np.unique(target)
    if len(present) < 2:
        raise ValueError("one class only")
    # One-vs-rest AUC over the classes present in the holdout, renormalised to them.
    subset = predictions[:, present]
    subset = subset / np.clip(subset.sum(axis=1, keepdims=True), 1e-12, None)
    if len(present) == 2:
        return float(sk.roc_auc_score(target == present[1], subset[:, 1]))
    return float(sk.roc_auc_score(target, subset, multi_class="ovr", labels=present))


def _safe(function: Any, *args: Any) -> float | None:
    """The metric, or None where it is undefined (one class in the holdout, say)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # undefined metrics warn, then give NaN
            value = function(*args)
    except ValueError:
        return None
    return _finite(value)


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def _json_label(label: Any) -> Any:
    if isinstance(label, bool | int | str) or label is None:
        return label
    if isinstance(label, float):
        return label if math.isfinite(label) else str(label)
    return str(label)
