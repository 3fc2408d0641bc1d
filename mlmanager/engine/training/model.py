"""The trained model as saved in an artifact: preprocessing, estimator and labels together.

Instances are pickled into artifacts; keep this class's import path and attribute names stable
so saved models keep loading.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlmanager.engine.artifacts import load_artifact


class TrainedModel:
    """Predicts one output from a frame of raw input columns (values as in the Parquet file).

    Columns missing from the frame count as missing values; extra columns are ignored.
    """

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
    ):
        self.output = output
        self.task = task
        self.metric = metric
        self.inputs = list(inputs)
        self.preprocessor = preprocessor
        self.estimator = estimator
        self.estimator_name = estimator_name
        self.classes = classes

    @property
    def input_columns(self) -> list[str]:
        return [name for name, _ in self.inputs]

    def features(self, frame: pd.DataFrame) -> Any:
        """The numeric matrix the estimator sees for `frame`."""
        columns = {
            name: frame[name].reset_index(drop=True)
            if name in frame.columns
            else pd.Series([None] * len(frame), dtype=object)
            for name in self.input_columns
        }
        raw = pd.DataFrame(columns, index=pd.RangeIndex(len(frame)))
        return self.preprocessor.transform(raw)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Predicted labels (classification, as in the data set) or amounts (regression)."""
        if self.task == "regression":
            return np.asarray(self.estimator.predict(self.features(frame)), dtype=np.float64)
        chosen = self.predict_proba(frame).argmax(axis=1)
        return np.array(self.classes, dtype=object)[chosen]

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Class probabilities, one column per entry of `classes`, in that order."""
        if self.task == "regression":
            raise TypeError("a regression model has no class probabilities")
        assert self.classes is not None
        probabilities = np.asarray(
            self.estimator.predict_proba(self.features(frame)), dtype=np.float64
        )
        if probabilities.ndim == 1:  # some estimators give P(class 1) only for two classes
            probabilities = np.column_stack([1 - probabilities, probabilities])
        # float32 arithmetic inside some estimators leaves sums a hair off 1.
        return probabilities / probabilities.sum(axis=1, keepdims=True)

    def predictions(self, frame: pd.DataFrame) -> np.ndarray:
        """What metrics are computed on: probabilities, or amounts for regression."""
        if self.task == "regression":
            return self.predict(frame)
        return self.predict_proba(frame)


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
