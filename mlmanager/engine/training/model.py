"""The trained model as saved in an artifact: preprocessing, estimator and labels together.

Instances are pickled into artifacts; keep this class's import path and attribute names stable
so saved models keep loading.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlmanager.engine.artifacts import load_artifact

# Frames up to this many rows (the most a predict request holds; also a small batch file or
# a batch's last chunk) skip the scikit-learn pipeline and the estimators' per-call input
# checks (see preprocessing.RowTransform and `native_predictions`); larger ones take the
# vectorised pipeline. Both give the same numbers (tests/training/test_preprocessing.py).
FAST_MAX_ROWS = 10_000

# Raw input rows: a DataFrame, or column name -> numpy array (all of one length).
Rows = pd.DataFrame | Mapping[str, np.ndarray]


def row_count(frame: Rows) -> int:
    if isinstance(frame, pd.DataFrame):
        return len(frame)
    return len(next(iter(frame.values()))) if frame else 0


class TrainedModel:
    """Predicts one output from a frame of raw input columns (values as in the Parquet file).

    Columns missing from the frame count as missing values; extra columns are ignored.
    `target_summary` is what a baseline learns from the training rows (metrics.target_summary).
    """

    # Artifacts saved before it existed unpickle without it.
    target_summary: dict[str, Any] | None = None

    def __init__(
        self,
        *,
        output: str,
        task: str,
        metric: str,
        inputs: list[tuple[str, str]],
        preprocessor: Any,
        estimator: Any,
        estimator_name: str,
        classes: list[Any] | None,
        target_summary: dict[str, Any] | None = None,
    ):
        self.output = output
        self.task = task
        self.metric = metric
        self.inputs = list(inputs)
        self.preprocessor = preprocessor
        self.estimator = estimator
        self.estimator_name = estimator_name
        self.classes = classes
        self.target_summary = target_summary

    @property
    def input_columns(self) -> list[str]:
        return [name for name, _ in self.inputs]

    def features(self, frame: Rows) -> Any:
        """The numeric matrix the estimator sees for `frame`: a DataFrame, or a mapping of
        column name to a numpy array (what the serving path builds without pandas)."""
        count = row_count(frame)
        if count <= FAST_MAX_ROWS:
            rows = self._row_transform()
            if rows is not None:
                missing = np.full(count, None, dtype=object)
                values = {
                    name: np.asarray(frame[name]) if name in frame else missing
                    for name in self.input_columns
                }
                return rows.transform(values, count)
        columns = {
            name: _series(frame[name]) if name in frame else pd.Series([None] * count, dtype=object)
            for name in self.input_columns
        }
        raw = pd.DataFrame(columns, index=pd.RangeIndex(count))
        return self.preprocessor.transform(raw)

    def _row_transform(self) -> Any:
        """The preprocessor's few-row form (a `preprocessing.RowTransform`, or None when the
        preprocessor is not one it knows), built on first use and not saved in artifacts."""
        if "_rows" not in self.__dict__:
            # Imported here: importing this module must not load scikit-learn.
            from mlmanager.engine.training.preprocessing import compile_rows

            self.__dict__["_rows"] = compile_rows(self.preprocessor)
        return self.__dict__["_rows"]

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_rows", None)
        return state

    def predict(self, frame: Rows) -> np.ndarray:
        """Predicted labels (classification, as in the data set) or amounts (regression)."""
        if self.task == "regression":
            features = self.features(frame)
            fast = (
                native_predictions(self.estimator, features)
                if row_count(frame) <= FAST_MAX_ROWS
                else None
            )
            if fast is not None:
                return fast
            return np.asarray(self.estimator.predict(features), dtype=np.float64)
        return self.labels(self.predict_proba(frame))

    def labels(self, probabilities: np.ndarray, threshold: float | None = None) -> np.ndarray:
        """The predicted label of each row of `probabilities` (one column per class).

        With a `threshold` (two classes only), a row is the positive class, the second of
        `classes`, when its probability is at least the threshold; without one, the most
        probable class."""
        return np.array(self.classes, dtype=object)[chosen_classes(probabilities, threshold)]

    def predict_proba(self, frame: Rows) -> np.ndarray:
        """Class probabilities, one column per entry of `classes`, in that order."""
        if self.task == "regression":
            raise TypeError("a regression model has no class probabilities")
        assert self.classes is not None
        features = self.features(frame)
        small = row_count(frame) <= FAST_MAX_ROWS
        fast = native_predictions(self.estimator, features) if small else None
        if fast is not None:
            probabilities = fast
        else:
            probabilities = np.asarray(self.estimator.predict_proba(features), dtype=np.float64)
        if probabilities.ndim == 1:  # some estimators give P(class 1) only for two classes
            probabilities = np.column_stack([1 - probabilities, probabilities])
        # float32 arithmetic inside some estimators leaves sums a hair off 1.
        return probabilities / probabilities.sum(axis=1, keepdims=True)

    def predictions(self, frame: Rows) -> np.ndarray:
        """What metrics are computed on: probabilities, or amounts for regression."""
        if self.task == "regression":
            return self.predict(frame)
        return self.predict_proba(frame)


def chosen_classes(probabilities: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Class indices chosen from probabilities: the most probable, or for two classes with a
    decision threshold, index 1 (positive) where its probability reaches the threshold."""
    if threshold is not None and probabilities.shape[1] == 2:
        return (probabilities[:, 1] >= threshold).astype(np.int64)
    return probabilities.argmax(axis=1)


def _series(values: Any) -> pd.Series:
    """A column as a Series indexed 0..n-1, keeping its dtype (numbers stay numbers)."""
    if isinstance(values, pd.Series):
        return values.reset_index(drop=True)
    return pd.Series(values)


def native_predictions(estimator: Any, features: Any) -> np.ndarray | None:
    """What `estimator` (a FLAML estimator) predicts for dense float32 `features` (class
    probabilities, or amounts), computed the way the library does it but without the
    scikit-learn wrappers' per-call cost; None when no shortcut applies."""
    if not isinstance(features, np.ndarray) or features.dtype != np.float32:
        return None
    forest = forest_predictions(estimator, features)
    return forest if forest is not None else lightgbm_predictions(estimator, features)


def lightgbm_predictions(estimator: Any, features: np.ndarray) -> np.ndarray | None:
    """A LightGBM model's predictions from its booster, as LGBMClassifier.predict_proba and
    LGBMRegressor.predict compute them, without their input validation (~0.6 ms a call)."""
    from lightgbm import LGBMClassifier, LGBMRegressor

    model: Any = getattr(estimator, "_model", None)
    if type(model) not in (LGBMClassifier, LGBMRegressor) or callable(model.objective):
        return None
    # Rows are independent, so one thread gives the same numbers as the library's n_jobs.
    predicted = model.booster_.predict(features, num_threads=1)
    if type(model) is LGBMClassifier and predicted.ndim == 1:
        return np.column_stack([1.0 - predicted, predicted])
    return predicted


def forest_predictions(estimator: Any, features: Any) -> np.ndarray | None:
    """A scikit-learn forest's predictions (class probabilities, or amounts) for a few dense
    rows, summed over its trees as the forest itself does, without its per-tree overhead
    (input checks and joblib, some 40 µs a tree: 4 ms for a 100-tree forest on one row).
    None when `estimator` (a FLAML estimator) is not such a forest."""
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )

    forest: Any = getattr(estimator, "_model", None)
    if type(forest) not in (
        RandomForestClassifier,
        ExtraTreesClassifier,
        RandomForestRegressor,
        ExtraTreesRegressor,
    ):
        return None
    if not isinstance(features, np.ndarray) or features.dtype != np.float32:
        return None
    if forest.n_outputs_ != 1:
        return None
    rows = np.ascontiguousarray(features)
    if type(forest) in (RandomForestRegressor, ExtraTreesRegressor):
        amounts = np.zeros(len(rows), dtype=np.float64)
        for tree in forest.estimators_:
            amounts += tree.tree_.predict(rows)[:, 0]
        return amounts / len(forest.estimators_)
    classes = int(forest.n_classes_)
    probabilities = np.zeros((len(rows), classes), dtype=np.float64)
    for tree in forest.estimators_:
        proba = tree.tree_.predict(rows)[:, :classes]
        normalizer = proba.sum(axis=1)[:, np.newaxis]
        normalizer[normalizer == 0.0] = 1.0
        probabilities += proba / normalizer
    return probabilities / len(forest.estimators_)


def single_threaded(estimator: Any) -> Any:
    """Make `estimator` (a FLAML estimator, or an ensemble of them) predict on one thread.

    Forests sum their trees' votes across threads in whatever order the threads finish, so
    multi-threaded predictions differ in the last bits from run to run; one thread makes them
    repeatable, and is also fastest for the one-row predictions of a form or an API call.
    """
    members = getattr(estimator, "members", None)
    if members is not None:
        for _, member, _ in members:
            single_threaded(member)
        return estimator
    inner = getattr(estimator, "estimator", estimator)
    get_params = getattr(inner, "get_params", None)
    if get_params is not None and "n_jobs" in get_params():
        inner.set_params(n_jobs=1)
    return estimator


def load_model(path: Path, *, key: bytes, signature: str) -> TrainedModel:
    """Load a model artifact after verifying it; raises ArtifactError when it was tampered."""
    model = load_artifact(path, key=key, expected_signature=signature)
    if not isinstance(model, TrainedModel):
        raise TypeError(f"{path} does not hold a trained model")
    return model
