"""Ensembling the best candidates, kept only when it measurably helps.

FLAML's own `ensemble=True` stacks the best estimators after the search with no time limit and
keeps the stack whether or not it is better. Here, after the search and only when the budget
left covers the estimated cost, the best configuration of each of the top estimators is
cross-validated on the same folds, a weighted average is chosen by greedy ensemble selection
(Caruana et al., 2004) on those out-of-fold predictions, and the ensemble is kept only if it
beats the best single member on them. Members are then refitted on all training rows.

`EnsembleModel` is pickled into artifacts: keep its import path and attributes stable.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
from sklearn.model_selection import KFold, ShuffleSplit, StratifiedKFold, StratifiedShuffleSplit

from mlmanager.engine.training import metrics
from mlmanager.engine.training.spec import higher_is_better
from mlmanager.engine.training.trials import Trial

logger = logging.getLogger(__name__)

MAX_MEMBERS = 4
SELECTION_ROUNDS = 20
# An ensemble is kept when it cuts the best member's out-of-fold error by this share; the
# error is the metric for losses (log loss, RMSE, MAE) and 1 - metric for the others.
MIN_GAIN = 0.01
FOLDS = 5
VALIDATION_SHARE = 0.1
# Cost estimate = cross-validation of each member (about its trial time) plus a refit.
_COST_SAFETY = 1.3
# A member's fit may take this many times its whole trial (a trial is several fits under CV).
_FIT_BUDGET_FACTOR = 1.5
# Setting a learner up costs this much per fit whatever the data (CatBoost's the most).
_FIT_OVERHEAD_S = 0.1


class EnsembleModel:
    """A weighted average of fitted estimators' probabilities (or amounts, for regression)."""

    def __init__(self, members: list[tuple[str, Any, float]], *, task: str, class_count: int):
        self.members = members  # (estimator name, fitted estimator, weight)
        self.task = task
        self.class_count = class_count

    def predict(self, features: Any) -> np.ndarray:
        if self.task != "regression":
            return self.predict_proba(features).argmax(axis=1)
        return np.sum(
            [
                weight * np.asarray(model.predict(features), dtype=np.float64)
                for _, model, weight in self.members
            ],
            axis=0,
        )

    def predict_proba(self, features: Any) -> np.ndarray:
        return np.sum(
            [
                weight * _probabilities(model, features, self.class_count)
                for _, model, weight in self.members
            ],
            axis=0,
        )

    def description(self) -> dict:
        return {
            "members": [
                {"estimator": name, "weight": round(weight, 4), "config": dict(model.params)}
                for name, model, weight in self.members
            ]
        }


def estimated_cost_s(trials: list[Trial], eval_method: str) -> float:
    members = candidates(trials)
    if len(members) < 2:
        return 0.0
    refit_share = 1 / FOLDS if eval_method == "cv" else 1 / (1 - VALIDATION_SHARE)
    fits = (FOLDS if eval_method == "cv" else 1) + 1
    return _COST_SAFETY * sum(
        trial.fit_time_s * (1 + refit_share) + fits * _FIT_OVERHEAD_S for trial in members
    )


def build_if_better(
    *,
    features: Any,
    target: np.ndarray,
    task: str,
    metric: str,
    trials: list[Trial],
    eval_method: str,
    seed: int,
    n_jobs: int,
    deadline: float,
) -> tuple[EnsembleModel, float, float] | None:
    """The ensemble, its out-of-fold score and its fit time; None when it does not help or
    does not fit in the time left before `deadline`."""
    started = time.time()
    members = candidates(trials)
    cost = estimated_cost_s(trials, eval_method)
    logger.info(
        "ensemble: %s members, about %.1f s, %.1f s left", len(members), cost, deadline - started
    )
    if len(members) < 2 or started + cost > deadline:
        return None
    class_count = 0 if task == "regression" else int(target.max()) + 1
    splits = list(_splits(target, task=task, eval_method=eval_method, seed=seed))
    rows = np.concatenate([validation for _, validation in splits])
    out_of_fold = []
    try:
        for trial in members:
            predictions = []
            for train, validation in splits:
                _check_time(deadline)
                model = _estimator(trial, task=task, n_jobs=n_jobs)
                model.fit(features[train], target[train], budget=_budget(trial, deadline))
                predictions.append(_predictions(model, features[validation], task, class_count))
            out_of_fold.append(np.concatenate(predictions))
    except _OutOfTime:
        logger.info("ensemble skipped: out of time")
        return None
    weights, ensemble_loss, best_single_loss = _select(out_of_fold, target[rows], metric)
    logger.info("ensemble loss %s vs best single %s", ensemble_loss, best_single_loss)
    chosen = [(trial, weight) for trial, weight in zip(members, weights, strict=True) if weight]
    ensemble_error, best_error = _error(metric, ensemble_loss), _error(metric, best_single_loss)
    if len(chosen) < 2 or ensemble_error > (1 - MIN_GAIN) * best_error:
        return None
    fitted = []
    try:
        for trial, weight in chosen:
            _check_time(deadline)
            model = _estimator(trial, task=task, n_jobs=n_jobs)
            model.fit(features, target, budget=_budget(trial, deadline))
            fitted.append((trial.estimator, model, float(weight)))
    except _OutOfTime:
        return None
    score = -ensemble_loss if higher_is_better(metric) else ensemble_loss
    return EnsembleModel(fitted, task=task, class_count=class_count), score, time.time() - started


def _error(metric: str, loss: float) -> float:
    """metrics.loss (the negated score for higher-is-better metrics) as an error >= 0."""
    return 1.0 + loss if higher_is_better(metric) else loss


class _OutOfTime(Exception):
    pass


def _check_time(deadline: float) -> None:
    if time.time() >= deadline:
        raise _OutOfTime


def _budget(trial: Trial, deadline: float) -> float:
    """Seconds one fit may take. FLAML's boosting learners stop adding trees at their budget;
    in the search, that budget cut some candidates short, so a fit without one could take far
    longer than the trial did."""
    return max(0.1, min(deadline - time.time(), _FIT_BUDGET_FACTOR * trial.fit_time_s))


def candidates(trials: list[Trial]) -> list[Trial]:
    best: dict[str, Trial] = {}
    for trial in trials:
        if trial.estimator == "ensemble" or not np.isfinite(trial.loss):
            continue
        if trial.estimator not in best or trial.loss < best[trial.estimator].loss:
            best[trial.estimator] = trial
    return sorted(best.values(), key=lambda trial: trial.loss)[:MAX_MEMBERS]


def _splits(target: np.ndarray, *, task: str, eval_method: str, seed: int) -> Any:
    dummy = np.zeros(len(target))
    classification = task != "regression"
    if eval_method == "cv":
        smallest = np.bincount(target).min() if classification else FOLDS
        if classification and smallest >= FOLDS:
            return StratifiedKFold(FOLDS, shuffle=True, random_state=seed).split(dummy, target)
        return KFold(FOLDS, shuffle=True, random_state=seed).split(dummy)
    if classification and np.bincount(target).min() >= 2:
        splitter: Any = StratifiedShuffleSplit(1, test_size=VALIDATION_SHARE, random_state=seed)
        return splitter.split(dummy, target)
    return ShuffleSplit(1, test_size=VALIDATION_SHARE, random_state=seed).split(dummy)


def _estimator(trial: Trial, *, task: str, n_jobs: int) -> Any:
    from flaml.automl.task.factory import task_factory

    learner = task_factory(task).estimator_class_from_str(trial.estimator)
    config = dict(trial.config)
    if trial.estimator == "catboost":
        config["allow_writing_files"] = False  # no catboost_info in the working directory
    return learner(task=task, n_jobs=n_jobs, **config)


def _predictions(model: Any, features: Any, task: str, class_count: int) -> np.ndarray:
    if task == "regression":
        return np.asarray(model.predict(features), dtype=np.float64)
    return _probabilities(model, features, class_count)


def _probabilities(model: Any, features: Any, class_count: int) -> np.ndarray:
    """Probabilities with one column per class, also when a fold's training rows lacked one."""
    probabilities = np.asarray(model.predict_proba(features), dtype=np.float64)
    if probabilities.shape[1] == class_count:
        return probabilities
    known = np.asarray(getattr(getattr(model, "estimator", model), "classes_", []), dtype=int)
    if len(known) != probabilities.shape[1]:
        raise ValueError("cannot align class probabilities")
    full = np.zeros((len(probabilities), class_count))
    full[:, known] = probabilities
    return full


def _select(
    out_of_fold: list[np.ndarray], target: np.ndarray, metric: str
) -> tuple[np.ndarray, float, float]:
    """Greedy forward selection with replacement; returns weights, ensemble and best losses."""
    losses = [metrics.loss(metric, target, predictions) for predictions in out_of_fold]
    best = int(np.argmin(losses))
    counts = np.zeros(len(out_of_fold))
    counts[best] = 1
    total = out_of_fold[best].copy()
    current = losses[best]
    for _ in range(SELECTION_ROUNDS):
        trial_losses = [
            metrics.loss(metric, target, (total + candidate) / (counts.sum() + 1))
            for candidate in out_of_fold
        ]
        choice = int(np.argmin(trial_losses))
        if trial_losses[choice] >= current:
            break
        counts[choice] += 1
        total += out_of_fold[choice]
        current = trial_losses[choice]
    return counts / counts.sum(), current, losses[best]
