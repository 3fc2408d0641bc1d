"""Scores of predictions in the user's metric, and the full set of holdout metrics.

Predictions are class probabilities (n rows × n classes, columns in class-index order) for
classification and numbers for regression; targets are class indices or numbers. Besides the
scalar metrics, a version keeps the curves its page draws (ROC, precision-recall, calibration;
error by range for regression), each cut to at most CURVE_POINTS points, and a baseline: the
same metrics for a model that knows only the training rows' class shares or mean.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from sklearn import metrics as sk
from sklearn.calibration import calibration_curve as sk_calibration_curve

from mlmanager.engine.training.spec import higher_is_better

PLOT_POINTS = 500
# Stored curves keep at most this many points: enough for a 300-pixel chart, small in JSON.
CURVE_POINTS = 101
CALIBRATION_BINS = 10
ERROR_RANGE_BINS = 10


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
    """Every metric shown for a model version, measured on the holdout rows, with the curves
    the model page draws (classification_curves, error_by_range)."""
    if task == "regression":
        rng = np.random.default_rng(seed)
        shown = np.sort(rng.permutation(len(target))[:PLOT_POINTS])
        return {
            "rmse": _safe(score, "rmse", target, predictions),
            "mae": _safe(score, "mae", target, predictions),
            "r2": _safe(score, "r2", target, predictions),
            "error_by_range": error_by_range(target, predictions),
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
    try:
        result.update(classification_curves(target, predictions))
    except ValueError:  # non-finite probabilities: no curves rather than no version
        result.update({"roc_curve": None, "precision_recall_curve": None, "calibration": None})
    matrix = sk.confusion_matrix(target, chosen, labels=np.arange(len(classes)))
    result["confusion_matrix"] = {
        "labels": [_json_label(label) for label in classes],
        "matrix": matrix.tolist(),
    }
    result["holdout_rows"] = len(target)
    return result


def target_summary(task: str, target: np.ndarray, *, class_count: int = 0) -> dict[str, Any]:
    """What a baseline model learns from the training target: its mean (regression) or the
    number of rows of each class (classification, in class-index order)."""
    if task == "regression":
        values = np.asarray(target, dtype=np.float64)
        values = values[np.isfinite(values)]
        return {"mean": float(values.mean()) if len(values) else 0.0}
    counts = np.bincount(np.asarray(target, dtype=np.int64), minlength=class_count)
    return {"class_counts": [int(count) for count in counts]}


def baseline_predictions(task: str, summary: dict[str, Any], rows: int) -> np.ndarray:
    """The baseline's predictions for `rows` rows: the training mean for every row, or the
    training class shares as every row's probabilities (so its label is the majority class,
    its log loss that of the class prior and its ROC AUC 0.5)."""
    if task == "regression":
        return np.full(rows, float(summary["mean"]))
    counts = np.asarray(summary["class_counts"], dtype=np.float64)
    shares = counts / counts.sum() if counts.sum() > 0 else np.full(len(counts), 1 / len(counts))
    return np.tile(shares, (rows, 1))


def baseline_metrics(
    task: str, target: np.ndarray, summary: dict[str, Any]
) -> dict[str, float | None]:
    """The scalar holdout metrics of the baseline, under the same names as the model's."""
    predictions = baseline_predictions(task, summary, len(target))
    if task == "regression":
        names = ["rmse", "mae", "r2"]
    elif task == "binary":
        names = ["accuracy", "balanced_accuracy", "f1", "roc_auc", "log_loss"]
    else:
        names = ["accuracy", "balanced_accuracy", "macro_f1", "roc_auc", "log_loss"]
    result = {}
    for name in names:
        if name == "roc_auc":
            # Equal scores for every row rank nothing: AUC 0.5 by definition, wherever the
            # model's own AUC is defined.
            defined = _safe(_auc, task, target, predictions) is not None
            result[name] = 0.5 if defined else None
        else:
            result[name] = _safe(score, name, target, predictions)
    return result


def _auc(task: str, target: np.ndarray, predictions: np.ndarray) -> float:
    if task == "binary":
        return score("roc_auc", target, predictions)
    return _multiclass_auc(target, predictions)


def classification_curves(target: np.ndarray, predictions: np.ndarray) -> dict[str, Any]:
    """ROC and precision-recall curves and a reliability diagram, downsampled.

    Two classes: for the positive class (index 1), with each precision-recall point's
    threshold, so the page can show precision and recall at a decision threshold. More
    classes: micro-averaged one-vs-rest curves, and the calibration of the chosen class's
    probability (the usual reliability diagram for several classes).
    """
    class_count = predictions.shape[1]
    if class_count == 2:
        truth = (target == 1).astype(np.int8)
        scores = predictions[:, 1]
        truth_calibration, scores_calibration = truth, scores
    else:
        truth = (target[:, None] == np.arange(class_count)[None, :]).astype(np.int8).ravel()
        scores = predictions.ravel()
        chosen = predictions.argmax(axis=1)
        truth_calibration = (chosen == target).astype(np.int8)
        scores_calibration = predictions.max(axis=1)
    curves: dict[str, Any] = {"roc_curve": None, "precision_recall_curve": None}
    if 0 < truth.sum() < len(truth):
        false_positive, true_positive, _ = sk.roc_curve(truth, scores)
        keep = _spread(len(false_positive))
        curves["roc_curve"] = {
            "fpr": _rounded(false_positive[keep]),
            "tpr": _rounded(true_positive[keep]),
        }
        precision, recall, thresholds = sk.precision_recall_curve(truth, scores)
        # Keep, for each threshold 0, 0.01, …, 1, the point of the smallest score threshold at
        # or above it: precision and recall are then exact at any two-decimal threshold (the
        # last point, recall 0 and precision 1, has no threshold and is dropped).
        grid = np.linspace(0.0, 1.0, CURVE_POINTS)
        keep = np.unique(np.searchsorted(thresholds, grid, side="left"))
        keep = keep[keep < len(thresholds)]
        curves["precision_recall_curve"] = {
            "precision": _rounded(precision[keep]),
            "recall": _rounded(recall[keep]),
            "thresholds": _rounded(thresholds[keep], digits=6),
        }
    curves["calibration"] = calibration(truth_calibration, scores_calibration)
    return curves


def calibration(truth: np.ndarray, scores: np.ndarray) -> dict[str, Any] | None:
    """Per non-empty bin of predicted probability: its mean prediction, the observed share
    of positives, and its row count."""
    if not len(truth):
        return None
    scores = np.clip(scores, 0.0, 1.0)  # float sums can pass 1 by a hair
    observed, predicted = sk_calibration_curve(truth, scores, n_bins=CALIBRATION_BINS)
    # The row counts, binned as calibration_curve(strategy="uniform") does (it returns none).
    edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    counts = np.bincount(np.searchsorted(edges[1:-1], scores), minlength=CALIBRATION_BINS)
    present = counts > 0
    return {
        "predicted": _rounded(predicted),
        "observed": _rounded(observed),
        "count": [int(count) for count in counts[present]],
    }


def error_by_range(target: np.ndarray, predictions: np.ndarray) -> list[dict[str, Any]]:
    """Errors by range of the actual value: up to ERROR_RANGE_BINS bins of about equal row
    counts (quantiles), each with its bounds, rows, mean absolute error and mean error
    (predicted minus actual: positive when the model overestimates there)."""
    keep = np.isfinite(target) & np.isfinite(predictions)
    target, predictions = target[keep], predictions[keep]
    if not len(target):
        return []
    edges = np.unique(np.quantile(target, np.linspace(0.0, 1.0, ERROR_RANGE_BINS + 1)))
    if len(edges) < 2:
        edges = np.array([edges[0], edges[0]])
    bins = np.clip(np.searchsorted(edges[1:-1], target, side="right"), 0, len(edges) - 2)
    ranges = []
    for index in range(len(edges) - 1):
        inside = bins == index
        if not inside.any():
            continue
        errors = predictions[inside] - target[inside]
        ranges.append(
            {
                "low": _finite(edges[index]),
                "high": _finite(edges[index + 1]),
                "rows": int(inside.sum()),
                "mae": _finite(np.abs(errors).mean()),
                "bias": _finite(errors.mean()),
            }
        )
    return ranges


def _spread(count: int) -> np.ndarray:
    """Indices of at most CURVE_POINTS points evenly spread over `count`, ends included."""
    if count <= CURVE_POINTS:
        return np.arange(count)
    return np.unique(np.linspace(0, count - 1, CURVE_POINTS).round().astype(np.int64))


def _rounded(values: np.ndarray, digits: int = 4) -> list[float | None]:
    # Four decimals are more than a chart or a table of the curve shows; thresholds keep six
    # so that rounding never moves one across a two-decimal threshold a user sets.
    return [_finite(round(float(value), digits)) for value in values]


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
