"""Measure a finished (or best-so-far) model on the holdout rows, within a deadline.

Runs in the parent after the search process has ended, from the checkpoint it left: the same
code path whether the search finished, hit its budget or was cancelled. Permutation
importance is computed on raw input columns, so each importance names a column the user
chose, and is kept cheap (a subsample, few repeats, fewer rows if time is short).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from mlmanager.engine.training import metrics
from mlmanager.engine.training.data import label_indices
from mlmanager.engine.training.model import TrainedModel, load_model
from mlmanager.engine.training.spec import higher_is_better

logger = logging.getLogger(__name__)

IMPORTANCE_MAX_ROWS = 2_000
IMPORTANCE_MIN_ROWS = 100
IMPORTANCE_REPEATS = 3
# Share of the time left that permutation importance plans to use (the rest is slack).
_IMPORTANCE_TIME_SHARE = 0.8


def evaluate(
    *,
    model_path: Path,
    signature: str,
    key: bytes,
    holdout_path: Path,
    seed: int,
    n_jobs: int,
    deadline: float,
    should_stop: Callable[[], bool] = lambda: False,
) -> tuple[TrainedModel, dict, list[dict]]:
    """The verified model, its holdout metrics (with the curves, and under "baseline" the
    same metrics for the training rows' majority class or mean) and its permutation importance.

    `deadline` is a time.monotonic() value; importance is cut short to meet it, or as soon as
    `should_stop` says so.
    """
    with threadpool_limits(limits=n_jobs):
        model = load_model(model_path, key=key, signature=signature)
        holdout = pd.read_parquet(holdout_path)
        inputs = holdout[model.input_columns]
        if model.task == "regression":
            target = pd.to_numeric(holdout[model.output], errors="coerce").to_numpy(np.float64)
            keep = np.isfinite(target)
        else:
            assert model.classes is not None
            target = label_indices(holdout[model.output], model.classes)
            keep = target >= 0
        inputs = inputs.loc[keep].reset_index(drop=True)
        target = target[keep]
        predictions = model.predictions(inputs)
        result = metrics.holdout_metrics(
            model.task, target, predictions, classes=model.classes, seed=seed
        )
        result["baseline"] = metrics.baseline_metrics(
            model.task, target, baseline_summary(model, target)
        )
        importance = permutation_importance(
            model, inputs, target, seed=seed, deadline=deadline, should_stop=should_stop
        )
    return model, result, importance


def baseline_summary(model: TrainedModel, holdout_target: np.ndarray) -> dict:
    """The training rows' mean or class counts the baseline predicts from. Models saved
    without them (built outside the search) fall back on the holdout's own, which flatters
    the baseline a little (its R² is then exactly 0)."""
    if model.target_summary is not None:
        return model.target_summary
    class_count = len(model.classes) if model.classes is not None else 0
    return metrics.target_summary(model.task, holdout_target, class_count=class_count)


def permutation_importance(
    model: TrainedModel,
    inputs: pd.DataFrame,
    target: np.ndarray,
    *,
    seed: int,
    deadline: float,
    should_stop: Callable[[], bool] = lambda: False,
    repeats: int = IMPORTANCE_REPEATS,
) -> list[dict]:
    """How much the model's score drops when each input column is shuffled; largest first.

    Columns not measured before `deadline` are left out rather than reported as zero.
    """
    rng = np.random.default_rng(seed)
    if len(inputs) > IMPORTANCE_MAX_ROWS:
        rows = np.sort(rng.permutation(len(inputs))[:IMPORTANCE_MAX_ROWS])
        inputs, target = inputs.iloc[rows].reset_index(drop=True), target[rows]
    if not len(inputs):
        return []
    scorer = _scorer(model, target)
    started = time.monotonic()
    baseline = scorer(model.predictions(inputs))
    pass_time = max(time.monotonic() - started, 1e-4)
    planned = pass_time * len(model.input_columns) * repeats
    available = _IMPORTANCE_TIME_SHARE * (deadline - time.monotonic())
    if planned > available and len(inputs) > IMPORTANCE_MIN_ROWS:
        # Prediction time grows with rows: use as many as the time left allows.
        count = max(IMPORTANCE_MIN_ROWS, int(len(inputs) * max(available, 0.0) / planned))
        rows = np.sort(rng.permutation(len(inputs))[:count])
        inputs, target = inputs.iloc[rows].reset_index(drop=True), target[rows]
        scorer = _scorer(model, target)
        baseline = scorer(model.predictions(inputs))
    importances: list[dict[str, Any]] = []
    for column in model.input_columns:
        drops = []
        for _ in range(repeats):
            if time.monotonic() >= deadline or should_stop():
                break
            shuffled = inputs.copy()
            shuffled[column] = inputs[column].to_numpy()[rng.permutation(len(inputs))]
            drops.append(baseline - scorer(model.predictions(shuffled)))
        if not drops:
            logger.info("permutation importance stopped before %s", column)
            break
        importances.append(
            {"feature": column, "importance": float(np.mean(drops)), "std": float(np.std(drops))}
        )
    importances.sort(key=lambda item: float(item["importance"]), reverse=True)
    return importances


def _scorer(model: TrainedModel, target: np.ndarray) -> Any:
    """A function from predictions to a score where higher is better, in the model's metric
    when it is defined on these rows (AUC needs both classes), else in a fallback."""
    metric = model.metric
    candidates = [metric, "log_loss"] if model.task != "regression" else [metric, "mae"]
    for name in candidates:
        sign = 1.0 if higher_is_better(name) else -1.0
        if not metrics.is_defined(name, target, _dummy(model, target)):
            continue
        return lambda predictions, name=name, sign=sign: (
            sign * metrics.score(name, target, predictions)
        )
    raise ValueError("no metric is defined on these rows")


def _dummy(model: TrainedModel, target: np.ndarray) -> np.ndarray:
    """Placeholder predictions, to find out whether a metric is defined for this target."""
    if model.task == "regression":
        return np.zeros(len(target))
    assert model.classes is not None
    return np.full((len(target), len(model.classes)), 1.0 / len(model.classes))
