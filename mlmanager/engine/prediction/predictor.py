"""A model version ready to predict, and the one place its decision threshold is applied."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mlmanager.engine.training import TrainedModel
from mlmanager.engine.training.model import chosen_classes

# Raw input rows: a DataFrame, or column name -> numpy array (all of one length).
Rows = pd.DataFrame | Mapping[str, np.ndarray]


def class_key(label: Any) -> str:
    """A class label as text: how probabilities are keyed in JSON and named in result columns
    (true/false as JSON writes them)."""
    if isinstance(label, bool):
        return "true" if label else "false"
    return str(label)


@dataclasses.dataclass(frozen=True)
class PredictedOutput:
    """One output of a predictor: its trained model, and its classes prepared once (labels to
    index with the chosen classes, and their keys), so that no request rebuilds them."""

    model: TrainedModel
    class_keys: tuple[str, ...] | None = dataclasses.field(init=False)
    class_labels: np.ndarray | None = dataclasses.field(init=False, repr=False)

    def __post_init__(self) -> None:
        classes = None if self.task == "regression" else self.model.classes
        keys = None if classes is None else tuple(class_key(label) for label in classes)
        labels = None if classes is None else np.array(classes, dtype=object)
        object.__setattr__(self, "class_keys", keys)
        object.__setattr__(self, "class_labels", labels)

    @property
    def name(self) -> str:
        return self.model.output

    @property
    def task(self) -> str:
        return self.model.task


@dataclasses.dataclass(frozen=True)
class Predictor:
    """A model version's outputs, its inputs, and the decision threshold of its two-class
    outputs (None: the more probable class). Build one with `Predictor.of`."""

    outputs: tuple[PredictedOutput, ...]
    inputs: tuple[str, ...]
    threshold: float | None = None

    @classmethod
    def of(
        cls,
        models: Iterable[TrainedModel],
        *,
        inputs: Sequence[str] | None = None,
        threshold: float | None = None,
    ) -> Predictor:
        """`inputs` are the version's input columns (by default, those the models read)."""
        outputs = tuple(PredictedOutput(model) for model in models)
        if inputs is None:
            inputs = list(dict.fromkeys(n for o in outputs for n in o.model.input_columns))
        return cls(outputs=outputs, inputs=tuple(inputs), threshold=threshold)

    def with_threshold(self, threshold: float | None) -> Predictor:
        """The same models with another threshold (the one setting that changes after a
        version is written); the outputs are shared, not rebuilt."""
        if threshold == self.threshold:
            return self
        return dataclasses.replace(self, threshold=threshold)


def chosen(probabilities: np.ndarray, threshold: float | None) -> np.ndarray:
    """The class index each row of `probabilities` is answered with: for two classes with a
    threshold, the positive (second) class where its probability reaches it, else the more
    probable class. Every prediction (rows, tables, files, explanations) chooses here."""
    return chosen_classes(probabilities, threshold)


def decided(
    output: PredictedOutput, rows: Rows, count: int, threshold: float | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """What `output` answers for `count` rows: the values (labels, or amounts for regression)
    and, for classification, the probabilities (one column per class). No rows, no call to
    the model (estimators refuse empty input)."""
    if output.task == "regression":
        values = output.model.predict(rows) if count else np.empty(0)
        return values, None
    assert output.class_labels is not None
    probabilities = (
        output.model.predict_proba(rows) if count else np.empty((0, len(output.class_labels)))
    )
    return output.class_labels[chosen(probabilities, threshold)], probabilities
