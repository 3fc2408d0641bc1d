"""A few rows answered as plain values (a form, an API request), and why one row got its answer.

This is the request path: no DataFrame is built (the models read the column arrays directly,
see `TrainedModel.features`) and nothing is copied or checked again; the caller has already
parsed and checked the rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mlmanager.engine.prediction.predictor import Predictor, chosen, decided

# How many inputs a per-prediction explanation lists.
EXPLANATION_INPUTS = 5


def predict_rows(predictor: Predictor, columns: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
    """Per row, per output: `{"value": ..}`, and for classification also
    `{"probabilities": {class key: p}}`. `columns` maps input names to arrays of one length
    (numbers as floats with NaN for missing, other values as objects with None); inputs left
    out are missing values to the model."""
    count = len(next(iter(columns.values()))) if columns else 0
    answers: list[dict[str, Any]] = [{} for _ in range(count)]
    threshold = predictor.threshold
    for output in predictor.outputs:
        values, probabilities = decided(output, columns, count, threshold)
        name = output.name
        if probabilities is None:
            for answer, value in zip(answers, values.tolist(), strict=True):
                answer[name] = {"value": value}
            continue
        keys = output.class_keys or ()
        for answer, label, row in zip(
            answers, values.tolist(), probabilities.tolist(), strict=True
        ):
            answer[name] = {"value": label, "probabilities": dict(zip(keys, row, strict=True))}
    return answers


def explain_row(
    predictor: Predictor, columns: Mapping[str, np.ndarray]
) -> dict[str, list[dict[str, Any]]]:
    """For the first row of `columns`: per output, the given inputs that moved its prediction
    most, `{"input": name, "effect": number}` each, largest effect first.

    Each given input is blanked in turn (made missing, as if not known) and the prediction
    is made again, all in one call; the effect is how far the predicted class's probability
    (or the predicted amount) moved because the input was known. Model-agnostic, exact for
    this row, and as cheap as one prediction of a few rows.
    """
    given = [
        name
        for name, values in columns.items()
        if not _missing(values[0]) and name in predictor.inputs
    ]
    if not given:
        return {output.name: [] for output in predictor.outputs}
    rows = 1 + len(given)
    probes = {name: np.repeat(values[:1], rows) for name, values in columns.items()}
    for index, name in enumerate(given, start=1):
        probe = probes[name]
        probe[index] = np.nan if probe.dtype.kind == "f" else None
    explanation: dict[str, list[dict[str, Any]]] = {}
    for output in predictor.outputs:
        if output.task == "regression":
            values = output.model.predict(probes)
            effects = values[0] - values[1:]
        else:
            probabilities = output.model.predict_proba(probes)
            index = int(chosen(probabilities[:1], predictor.threshold)[0])
            effects = probabilities[0, index] - probabilities[1:, index]
        order = np.argsort(-np.abs(effects))[:EXPLANATION_INPUTS]
        explanation[output.name] = [
            {"input": given[i], "effect": float(effects[i])} for i in order if effects[i] != 0
        ]
    return explanation


def _missing(value: Any) -> bool:
    """How a parsed column marks a missing value: NaN in number columns, else None."""
    return value is None or (isinstance(value, float) and np.isnan(value))
