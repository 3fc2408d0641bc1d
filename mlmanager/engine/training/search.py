"""The model search for one output, run inside the search process (see `child`).

The data set is read once, the holdout is set aside (and written for the parent to measure
the final model on), the preprocessing is fitted on the training rows, and FLAML searches
over gradient-boosted trees, forests and a linear model in chunks: each chunk is a fresh
`AutoML.fit` warm-started from the best configuration found so far per estimator and from the
libraries' own defaults (tried first of all, so that the first checkpoint is already as good
as an untuned LightGBM or XGBoost, rather than FLAML's tiny 4-tree starting models). After a
chunk that improves the best validation loss, the model (refitted by FLAML on all training
rows) is saved as a signed checkpoint and named in status.json, so whenever the parent stops
this process, the best model so far is on disk, whole.

When the search is over, the best model is refitted once more on the training rows and the
holdout together (as AutoGluon's refit_full and H2O do) and saved as the final model, in the
time the search plan kept for it. The parent measures the checkpoint, which never saw the
holdout, and ships the final model: the metrics are honest, and the model uses every row.

Chunks are how the hard budget stays hard: FLAML runs over its time budget by the length of
a trial and a refit, and the parent kills this process at its deadline, losing only the
chunk in flight. With `max_candidates` the chunks count candidates instead of seconds and
FLAML ignores the clock (round-robin over estimators, no time-based choices), which makes
the search repeatable.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse
from flaml import AutoML
from sklearn.metrics import balanced_accuracy_score
from threadpoolctl import threadpool_limits

from mlmanager.engine.artifacts import write_artifact
from mlmanager.engine.training import ensemble
from mlmanager.engine.training.child import STOP, SearchJob, SearchStopped
from mlmanager.engine.training.data import TrainingData, read_training_data
from mlmanager.engine.training.metrics import target_summary
from mlmanager.engine.training.model import TrainedModel, single_threaded
from mlmanager.engine.training.preprocessing import build_preprocessor
from mlmanager.engine.training.spec import CV_FOLDS
from mlmanager.engine.training.status import OutputFolder, write_json
from mlmanager.engine.training.trials import (
    Trial,
    leaderboard,
    loss_from_score,
    read_trials,
    score_from_loss,
)

logger = logging.getLogger(__name__)

# FLAML's names. "lrl1" is L1-regularised logistic regression, "enet" elastic net. The order
# is the round-robin order with max_candidates: cheap learners first, CatBoost (slow to start) late.
CLASSIFICATION_ESTIMATORS = ("lgbm", "xgboost", "rf", "extra_tree", "catboost", "lrl1")
REGRESSION_ESTIMATORS = ("lgbm", "xgboost", "rf", "extra_tree", "catboost", "enet")
# Cross-validation is affordable and steadier on small data; past this, one validation split.
CV_MAX_ROWS = 10_000
VALIDATION_SHARE = 0.1
# Time-budgeted search: about this many chunks, each within these bounds.
CHUNKS_PER_SEARCH = 4
MIN_CHUNK_S = 2.0
# The first chunk is shorter, so that a model exists early (for a cancel or a tight budget).
FIRST_CHUNK_SHARE = 0.1
MIN_FIRST_CHUNK_S = 1.0
# Less time than this left after a chunk is not worth another FLAML start and refit.
MIN_LAST_CHUNK_S = 0.5
MAX_CHUNK_S = 600.0
# The last chunk takes what is left when that is less than this many chunks.
LAST_CHUNK_FACTOR = 1.5
# With max_candidates: candidates per chunk (so checkpoints come regularly).
CANDIDATES_PER_CHUNK = 12
# FLAML treats max_iter=1 as "fit the first learner, no search" and logs no trial, so a chunk
# always asks for at least two (a cap of one candidate therefore tries two).
MIN_CHUNK_CANDIDATES = 2
# Ensembling is tried only when the search has this long, within at most this share of it.
ENSEMBLE_MIN_WINDOW_S = 30.0
ENSEMBLE_MAX_SHARE = 0.2
# The parent measures the final model on at most this many holdout rows.
HOLDOUT_EVAL_MAX_ROWS = 50_000
# The final refit on all rows is planned at this many times one fit of the best model,
# scaled to the added rows.
FINAL_REFIT_SAFETY = 1.5
# The libraries' own defaults, in FLAML's hyperparameter names: every search tries them first
# (FLAML's static starting points are tiny models, 4 trees of 4 leaves, far below an untuned
# library model), so the first checkpoint is at least as good as the library out of the box.
# Later chunks keep them as starting points beside the best configuration found so far.
LIBRARY_DEFAULTS: dict[str, dict[str, Any]] = {
    # LightGBM: 100 trees, 31 leaves, learning rate 0.1, max_bin 255, no regularisation.
    "lgbm": {
        "n_estimators": 100,
        "num_leaves": 31,
        "min_child_samples": 20,
        "learning_rate": 0.1,
        "log_max_bin": 8,
        "colsample_bytree": 1.0,
        "reg_alpha": 1 / 1024,  # the lower ends of FLAML's ranges stand for 0
        "reg_lambda": 1 / 1024,
    },
    # XGBoost: 100 trees of depth 6 (at most 64 leaves; FLAML grows them leaf-wise), eta 0.3.
    "xgboost": {
        "n_estimators": 100,
        "max_leaves": 64,
        "min_child_weight": 1.0,
        "learning_rate": 0.3,
        "subsample": 1.0,
        "colsample_bylevel": 1.0,
        "colsample_bytree": 1.0,
        "reg_alpha": 1 / 1024,
        "reg_lambda": 1.0,
    },
}
# Fixed constructor arguments per estimator (FLAML's custom_hp, single-value domains).
FIXED_PARAMS: dict[str, dict[str, Any]] = {
    # CatBoost writes a catboost_info folder into the working directory unless told not to.
    "catboost": {"allow_writing_files": False},
}

_FLAML_METRICS = {
    "roc_auc": "roc_auc",
    "log_loss": "log_loss",
    "accuracy": "accuracy",
    "f1": "f1",
    "macro_f1": "macro_f1",
    "rmse": "rmse",
    "mae": "mae",
    "r2": "r2",
}


def run_search(job: SearchJob, folder: OutputFolder) -> None:
    with threadpool_limits(limits=job.n_jobs):
        write_json(folder.status, {"state": "preparing", "candidates": 0, "pid": os.getpid()})
        # A stop before the search has a model ends the process (child.EXIT_STOPPED).
        with STOP.interruptible():
            data = read_training_data(
                Path(job.parquet_path),
                inputs=[name for name, _ in job.inputs],
                output=job.output,
                task=job.task,
                seed=job.seed,
            )
        holdout_rows = _write_holdout(folder, data, seed=job.seed)
        with STOP.interruptible():
            preprocessor = build_preprocessor(job.inputs, data.train)
            features = preprocessor.fit_transform(data.train)
        target = data.train_target
        holdout = Rows(
            preprocessor.transform(data.holdout[[name for name, _ in job.inputs]]),
            data.holdout_target,
        )
        facts = {
            "pid": os.getpid(),
            "row_count": data.row_count,
            "target_row_count": data.target_row_count,
            "train_rows": len(target),
            "holdout_rows": len(data.holdout),
            "holdout_rows_evaluated": holdout_rows,
            "feature_count": int(features.shape[1]),
            "eval_method": "cv" if len(target) < CV_MAX_ROWS else "holdout",
        }
        classes = data.classes
        del data  # the raw training rows are not needed past this point
        train = Rows(features, target)
        ChunkedSearch(job, folder, train, holdout, preprocessor, facts, classes).run()


class Rows:
    """Feature matrix (dense or sparse) and encoded target of some rows."""

    def __init__(self, features: Any, target: np.ndarray):
        self.features = features
        self.target = target

    def __len__(self) -> int:
        return len(self.target)

    def __add__(self, other: Rows) -> Rows:
        if scipy.sparse.issparse(self.features) or scipy.sparse.issparse(other.features):
            stacked = scipy.sparse.vstack([self.features, other.features], format="csr")
        else:
            stacked = np.concatenate([self.features, other.features])
        return Rows(stacked, np.concatenate([self.target, other.target]))


def refitted(estimator: Any, rows: Rows, *, budget_s: float | None) -> Any:
    """A fresh copy of `estimator` (a fitted FLAML estimator, or an ensemble of them) fitted
    on `rows` with the same hyperparameters; FLAML's learners build their library model from
    `params` anew on every fit, and stop boosting at `budget_s`."""
    if isinstance(estimator, ensemble.EnsembleModel):
        members = [
            (name, refitted(member, rows, budget_s=budget_s), weight)
            for name, member, weight in estimator.members
        ]
        return ensemble.EnsembleModel(
            members, task=estimator.task, class_count=estimator.class_count
        )
    fresh = copy.copy(estimator)
    fresh.params = dict(estimator.params)
    fresh._model = None
    fresh.fit(rows.features, rows.target, budget=budget_s)
    return fresh


def default_starting_points(
    estimators: list[str], *, rows: int, features: int, task: str
) -> dict[str, list[dict]]:
    """The library defaults (LIBRARY_DEFAULTS) of the `estimators` that have them, each size
    kept inside FLAML's range for `rows` training rows. On small data (cross-validated, where
    forests are cheap and often best) also scikit-learn's forest defaults: 100 full-grown
    trees, sqrt(features) per split for classification (FLAML's tiny forests give probabilities
    so flat that one class wins every row)."""
    fitted_rows = rows if rows < CV_MAX_ROWS else int(rows * (1 - VALIDATION_SHARE))
    upper = max(5, min(32768, fitted_rows))  # FLAML's bound for trees and leaves
    points: dict[str, list[dict]] = {}
    for name in estimators:
        if name in LIBRARY_DEFAULTS:
            point = dict(LIBRARY_DEFAULTS[name])
            for key in ("n_estimators", "num_leaves", "max_leaves"):
                if key in point:
                    point[key] = min(point[key], upper)
            points[name] = [point]
        elif name in ("rf", "extra_tree") and rows < CV_MAX_ROWS:
            forest: dict[str, Any] = {
                "n_estimators": min(100, max(5, min(2048, fitted_rows))),
                "max_features": 1.0,
                "max_leaves": max(5, min(32768, fitted_rows >> 1)),
            }
            if task != "regression":
                forest["max_features"] = 1 / math.sqrt(max(1, features))
                forest["criterion"] = "gini"
            points[name] = [forest]
    return points


def _write_holdout(folder: OutputFolder, data: TrainingData, *, seed: int) -> int:
    holdout = data.holdout
    if len(holdout) > HOLDOUT_EVAL_MAX_ROWS:
        rng = np.random.default_rng(seed)
        holdout = holdout.iloc[np.sort(rng.permutation(len(holdout))[:HOLDOUT_EVAL_MAX_ROWS])]
    table = pa.Table.from_pandas(holdout, preserve_index=False)
    temporary = folder.holdout.with_name(folder.holdout.name + ".part")
    pq.write_table(table, temporary)
    temporary.replace(folder.holdout)
    return len(holdout)


def balanced_accuracy_metric(
    X_val: Any,
    y_val: Any,
    estimator: Any,
    labels: Any,
    X_train: Any,
    y_train: Any,
    weight_val: Any = None,
    weight_train: Any = None,
    *args: Any,
    **kwargs: Any,
) -> tuple[float, dict]:
    """FLAML has no built-in balanced accuracy; this is its custom-metric form (a loss)."""
    value = balanced_accuracy_score(y_val, estimator.predict(X_val))
    return 1.0 - value, {"balanced_accuracy": value}


class ChunkedSearch:
    def __init__(
        self,
        job: SearchJob,
        folder: OutputFolder,
        train: Rows,
        holdout: Rows,
        preprocessor: Any,
        facts: dict,
        classes: list | None,
    ):
        self.job = job
        self.folder = folder
        self.features = train.features
        self.target = train.target
        self.holdout = holdout
        self.preprocessor = preprocessor
        self.facts = facts
        self.classes = classes
        self.eval_method = facts["eval_method"]
        self.estimators = list(
            REGRESSION_ESTIMATORS if job.task == "regression" else CLASSIFICATION_ESTIMATORS
        )
        self.deterministic = job.max_candidates is not None
        self.trials: list[Trial] = []
        self.best_loss = math.inf
        self.best_estimator: str | None = None
        # Per estimator, the configurations the next chunk starts from (best first).
        self.starting_points: dict[str, list[dict]] = self._default_points()
        self.checkpoint: dict | None = None
        self.best_model: Any = None
        # Seconds one fit of the best model takes on the training rows.
        self.best_fit_s = 0.0
        self.final: dict | None = None
        self.chunk = 0
        self.overrun = 0.0
        self.ensemble_pending = not self.deterministic
        self.started = time.time()
        self.window = max(0.0, job.search_deadline - self.started)

    def _default_points(self) -> dict[str, list[dict]]:
        return default_starting_points(
            self.estimators,
            rows=len(self.target),
            features=int(self.features.shape[1]),
            task=self.job.task,
        )

    def run(self) -> None:
        try:
            self._search()
            if not self.deterministic:
                self.ensemble_pending = False
                if not self._try_ensemble():
                    self._search()  # with the time the ensemble did not take
            self._refit_on_all_rows()
        except SearchStopped:
            # The parent asked to stop (a cancel): the checkpoint, if any, is the result.
            logger.info("stopped at the parent's request after %s candidates", len(self.trials))
            self._write_status("stopped")
            if self.checkpoint is None:
                raise
            return
        self._write_status("done")

    def _search(self) -> None:
        while (budget := self._next_chunk()) is not None:
            self._write_status("searching")
            started = time.time()
            trials_before = len(self.trials)
            automl = AutoML()
            try:
                with STOP.interruptible():
                    self._fit_chunk(automl, budget)
            except SearchStopped:
                self._keep_best_of_stopped_chunk(automl)
                raise
            except Exception:
                # A stop that landed in a library's C callback (where ctypes drops it) can leave
                # that library failing (xgboost: "accumulated_rows == num_row_"): after a stop,
                # such an error is the stop.
                if not STOP.requested:
                    raise
                logger.info("the chunk failed after the stop request", exc_info=True)
                self._keep_best_of_stopped_chunk(automl)
                raise SearchStopped() from None
            if budget["time_budget"] > 0:
                overrun = time.time() - started - budget["time_budget"]
                self.overrun = max(self.overrun, overrun)
            self._after_chunk(automl)
            self.chunk += 1
            if self.deterministic and len(self.trials) == trials_before:
                # A counted search that tried nothing would ask for the same chunk for ever.
                logger.warning("chunk %s tried no candidate; ending the search", self.chunk)
                break

    # --- one chunk ---------------------------------------------------------------------------

    def _next_chunk(self) -> dict | None:
        STOP.check()
        now = time.time()
        if now >= self.job.search_deadline and self.chunk > 0:
            return None
        if self.deterministic:
            assert self.job.max_candidates is not None
            candidates_left = self.job.max_candidates - len(self.trials)
            if candidates_left <= 0:
                return None
            size = max(CANDIDATES_PER_CHUNK, math.ceil(self.job.max_candidates / 4))
            if candidates_left < LAST_CHUNK_FACTOR * size:
                size = candidates_left
            return {"time_budget": -1, "max_iter": max(size, MIN_CHUNK_CANDIDATES)}
        # FLAML ends a chunk late by its last trial and the refit: plan for the worst seen.
        overrun = max(self._refit_margin(), self.overrun)
        seconds_left = (
            self.job.search_deadline
            - now
            - overrun
            - self._ensemble_reserve()
            - self._final_refit_reserve()
        )
        if self.chunk == 0:
            # Short, so a first checkpoint exists early; always tried, however little is left.
            first = min(max(FIRST_CHUNK_SHARE * self.window, MIN_FIRST_CHUNK_S), MAX_CHUNK_S)
            return {"time_budget": max(min(seconds_left, first), MIN_FIRST_CHUNK_S)}
        if seconds_left < MIN_LAST_CHUNK_S:
            return None
        seconds = min(max(self.window / CHUNKS_PER_SEARCH, MIN_CHUNK_S), MAX_CHUNK_S)
        if seconds_left < LAST_CHUNK_FACTOR * seconds:
            seconds = seconds_left
        return {"time_budget": seconds}

    def _refit_margin(self) -> float:
        """Time FLAML takes past its budget to refit the best model on all training rows."""
        best = [trial for trial in self.trials if trial.loss == self.best_loss]
        if not best:
            return 0.0
        per_fit = best[0].fit_time_s / (CV_FOLDS if self.eval_method == "cv" else 1)
        return 1.3 * per_fit

    def _final_refit_reserve(self) -> float:
        if not len(self.holdout):
            return 0.0
        return FINAL_REFIT_SAFETY * self.best_fit_s * (1 + len(self.holdout) / len(self.target))

    def _ensemble_reserve(self) -> float:
        if self.window < ENSEMBLE_MIN_WINDOW_S or not self.ensemble_pending:
            return 0.0
        cost = ensemble.estimated_cost_s(self.trials, self.eval_method)
        return min(cost, ENSEMBLE_MAX_SHARE * self.window)

    def _fit_chunk(self, automl: AutoML, budget: dict) -> None:
        metric = (
            balanced_accuracy_metric
            if self.job.metric == "balanced_accuracy"
            else _FLAML_METRICS[self.job.metric]
        )
        settings: dict[str, Any] = {
            "task": self.job.task,
            "metric": metric,
            "estimator_list": self.estimators,
            "eval_method": self.eval_method,
            "n_splits": CV_FOLDS,
            "split_ratio": VALIDATION_SHARE,
            "seed": self.job.seed + self.chunk,
            "n_jobs": self.job.n_jobs,
            "skip_transform": True,  # preprocessing is ours, and saved with the model
            "retrain_full": True,
            "log_file_name": str(self.folder.path / f"trials-{self.chunk}.jsonl"),
            "log_type": "all",
            "verbose": 0,
            # Keeps each estimator's best fitted model of the chunk (at most one per
            # estimator, the others are freed), so a chunk stopped by a cancel still has its
            # best candidate to save (see _keep_best_of_stopped_chunk).
            "model_history": True,
            "starting_points": {
                name: [dict(point) for point in points]
                for name, points in self.starting_points.items()
            },
            "custom_hp": {
                name: {key: {"domain": value} for key, value in params.items()}
                for name, params in FIXED_PARAMS.items()
                if name in self.estimators
            },
        }
        if self.deterministic:
            # Round-robin and no sampling: FLAML then takes no decision from measured times.
            settings.update(learner_selector="roundrobin", sample=False)
        logger.info("chunk %s: %s", self.chunk, budget)
        automl.fit(self.features, self.target, **settings, **budget)

    def _keep_best_of_stopped_chunk(self, automl: AutoML) -> None:
        """Save the best candidate of a chunk a stop interrupted, when it beats the checkpoint.

        It is the model FLAML fitted to score that candidate (on the training split, or on
        the last fold when cross-validating), not refitted on all training rows: a cancel
        has no time for a refit, and the parent measures it on the holdout like any other.
        """
        self.trials.extend(read_trials(self.folder.path / f"trials-{self.chunk}.jsonl"))
        # FLAML's per-estimator search states hold those models (model_history=True); its
        # public best_model_for_estimator answers None for the overall best during a search.
        states = getattr(automl, "_search_states", None) or {}
        fitted = [
            (state.best_loss, name, state.trained_estimator)
            for name, state in states.items()
            if getattr(state, "trained_estimator", None) is not None
            and getattr(state.trained_estimator, "_model", None) is not None
            and math.isfinite(state.best_loss)
        ]
        if not fitted:
            return
        loss, name, estimator = min(fitted, key=lambda item: item[0])
        if loss >= self.best_loss:
            return
        logger.info(
            "stopped in chunk %s: keeping its best candidate, %s %s", self.chunk, name, loss
        )
        self.best_loss = loss
        self.best_estimator = name
        best = [trial for trial in self.trials if trial.loss == loss]
        self.best_fit_s = (
            best[0].fit_time_s / (CV_FOLDS if self.eval_method == "cv" else 1) if best else 0.0
        )
        self._save_checkpoint(estimator, name)

    def _after_chunk(self, automl: AutoML) -> None:
        self.trials.extend(read_trials(self.folder.path / f"trials-{self.chunk}.jsonl"))
        defaults = self._default_points()
        for estimator, config in (automl.best_config_per_estimator or {}).items():
            if config:
                point = {key: value for key, value in config.items() if key != "FLAML_sample_size"}
                points = [point]
                points += [p for p in defaults.get(estimator, []) if p != point]
                self.starting_points[estimator] = points
        loss = automl.best_loss if automl.best_estimator else math.inf
        logger.info("chunk %s done: best %s %s", self.chunk, automl.best_estimator, loss)
        if automl.model is not None and loss < self.best_loss:
            self.best_loss = loss
            self.best_estimator = automl.best_estimator
            best = [trial for trial in self.trials if trial.loss == loss]
            self.best_fit_s = (
                best[0].fit_time_s / (CV_FOLDS if self.eval_method == "cv" else 1) if best else 0.0
            )
            self._save_checkpoint(automl.model, automl.best_estimator)

    def _trained_model(self, estimator: Any, name: str) -> TrainedModel:
        return TrainedModel(
            output=self.job.output,
            task=self.job.task,
            metric=self.job.metric,
            inputs=self.job.inputs,
            preprocessor=self.preprocessor,
            estimator=single_threaded(estimator),
            estimator_name=name,
            classes=self.classes,
            # What the evaluation's baseline predicts from: the training rows' mean or classes.
            target_summary=target_summary(
                self.job.task, self.target, class_count=len(self.classes or [])
            ),
        )

    def _save_checkpoint(self, estimator: Any, name: str) -> None:
        model = self._trained_model(estimator, name)
        self.best_model = estimator
        number = (self.checkpoint or {}).get("number", 0) + 1
        path = self.folder.checkpoint(number)
        signature = write_artifact(model, path, key=self.job.artifact_key)
        previous = self.checkpoint
        self.checkpoint = {
            "number": number,
            "path": str(path),
            "signature": signature,
            "estimator": name,
            "loss": self.best_loss,
        }
        self._write_status("searching")
        if previous is not None:  # only once status.json names the new one
            old = self.folder.checkpoint(previous["number"])
            old.unlink(missing_ok=True)
            old.with_suffix(old.suffix + ".sig").unlink(missing_ok=True)

    def _refit_on_all_rows(self) -> None:
        """Save the best model refitted on the training rows and the holdout as the final
        model, when the time left covers it (a counted search always refits)."""
        if self.checkpoint is None or not len(self.holdout):
            return
        time_left = self.job.search_deadline - time.time()
        if not self.deterministic and self._final_refit_reserve() > time_left:
            logger.info("no time left to refit on all rows; the final model is the checkpoint")
            return
        started = time.time()
        self._write_status("refitting")
        with STOP.interruptible():
            estimator = refitted(
                self.best_model,
                Rows(self.features, self.target) + self.holdout,
                budget_s=max(time_left, 1.0) if not self.deterministic else None,
            )
        model = self._trained_model(estimator, str(self.best_estimator))
        path = self.folder.final
        signature = write_artifact(model, path, key=self.job.artifact_key)
        rows = len(self.target) + len(self.holdout)
        self.final = {"path": str(path), "signature": signature, "rows": rows}
        logger.info("refitted on all rows in %.1f s", time.time() - started)

    # --- ensemble ----------------------------------------------------------------------------

    def _try_ensemble(self) -> bool:
        """Replace the best model by an ensemble if one helps; True if it did."""
        if self.window < ENSEMBLE_MIN_WINDOW_S or self.checkpoint is None:
            return False
        with STOP.interruptible():
            chosen = ensemble.build_if_better(
                features=self.features,
                target=self.target,
                task=self.job.task,
                metric=self.job.metric,
                trials=self.trials,
                eval_method=self.eval_method,
                seed=self.job.seed,
                n_jobs=self.job.n_jobs,
                deadline=self.job.search_deadline,
            )
        if chosen is None:
            return False
        estimator, validation_score, fit_time_s = chosen
        self.trials.append(
            Trial(
                estimator="ensemble",
                config=estimator.description(),
                loss=loss_from_score(self.job.metric, validation_score),
                fit_time_s=fit_time_s,
            )
        )
        self.best_loss = self.trials[-1].loss
        self.best_estimator = "ensemble"
        members = {name for name, _, _ in estimator.members}
        self.best_fit_s = sum(
            trial.fit_time_s / (CV_FOLDS if self.eval_method == "cv" else 1)
            for trial in ensemble.candidates(self.trials)
            if trial.estimator in members
        )
        self._save_checkpoint(estimator, "ensemble")
        return True

    # --- reporting ---------------------------------------------------------------------------

    def _write_status(self, state: str) -> None:
        write_json(
            self.folder.status,
            {
                "state": state,
                "chunk": self.chunk,
                "candidates": len(self.trials),
                "best_loss": self.best_loss if math.isfinite(self.best_loss) else None,
                "best_score": score_from_loss(self.job.metric, self.best_loss)
                if math.isfinite(self.best_loss)
                else None,
                "best_estimator": self.best_estimator,
                "leaderboard": leaderboard(
                    self.trials, self.job.metric, chosen=self.best_estimator
                ),
                "checkpoint": self.checkpoint,
                "final": self.final,
                "estimators": self.estimators,
                **self.facts,
            },
        )
