"""The columns a prediction adds to a table: their names, kinds and types."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import numpy as np
import pyarrow as pa

from mlmanager.engine.prediction.predictor import PredictedOutput, Predictor


@dataclasses.dataclass(frozen=True)
class OutputColumn:
    """One column a prediction adds.

    `kind` is "value" (a regression's amount), "label" (a classification's predicted class) or
    "probability" (of class `class_key`). `threshold` is set on the label column of a two-class
    output whose label the decision threshold chooses (None: the more probable class)."""

    name: str
    output: str
    kind: str
    type: pa.DataType
    class_key: str | None = None
    threshold: float | None = None


def output_columns(predictor: Predictor, *, taken: Iterable[str] = ()) -> list[OutputColumn]:
    """Per output, in order: `predicted_<output>` (the label or amount), then for
    classification `probability_<output>_<class>` per class. A name already in `taken` (the
    table's own columns, or an earlier prediction column) gets a suffix: `_2`, `_3`..."""
    names = set(taken)
    columns = []
    for output in predictor.outputs:
        predicted = _free_name(f"predicted_{output.name}", names)
        if output.class_keys is None:
            columns.append(OutputColumn(predicted, output.name, "value", pa.float64()))
            continue
        binary = len(output.class_keys) == 2
        columns.append(
            OutputColumn(
                predicted,
                output.name,
                "label",
                label_type(output),
                threshold=predictor.threshold if binary else None,
            )
        )
        for key in output.class_keys:
            name = _free_name(f"probability_{output.name}_{key}", names)
            columns.append(OutputColumn(name, output.name, "probability", pa.float64(), key))
    return columns


def label_type(output: PredictedOutput) -> pa.DataType:
    """The Arrow type of an output's labels: the type of its classes (text, whole numbers,
    true/false...); text when they have no single type."""
    assert output.class_labels is not None
    try:
        return pa.array([plain(label) for label in output.class_labels]).type
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.string()


def plain(value: object) -> object:
    """A numpy scalar as the Python value Arrow takes."""
    return value.item() if isinstance(value, np.generic) else value


def _free_name(name: str, taken: set[str]) -> str:
    candidate, number = name, 2
    while candidate in taken:
        candidate, number = f"{name}_{number}", number + 1
    taken.add(candidate)
    return candidate
