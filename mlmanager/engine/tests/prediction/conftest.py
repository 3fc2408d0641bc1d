"""Small models fitted in a moment (linear, on two inputs), as the engine saves them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from mlmanager.engine.prediction import Predictor
from mlmanager.engine.training import TrainedModel
from mlmanager.engine.training.preprocessing import build_preprocessor

INPUTS = [("x", "numeric"), ("color", "categorical")]
COLORS = ["red", "green", "blue"]


def training_frame(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(size=rows), "color": rng.choice(COLORS, rows)})


def fitted(output: str, task: str, target: np.ndarray, classes: list | None) -> TrainedModel:
    """A TrainedModel as training leaves it; for classification `target` holds class indices
    (the estimator's probability columns are then in the order of `classes`)."""
    frame = training_frame()
    preprocessor = build_preprocessor(INPUTS, frame)
    features = preprocessor.fit_transform(frame)
    estimator = (LinearRegression() if task == "regression" else LogisticRegression()).fit(
        features, target
    )
    return TrainedModel(
        output=output,
        task=task,
        metric="rmse" if task == "regression" else "log_loss",
        inputs=INPUTS,
        preprocessor=preprocessor,
        estimator=estimator,
        estimator_name="linear",
        classes=classes,
    )


@pytest.fixture(scope="session")
def amount_model() -> TrainedModel:
    frame = training_frame()
    return fitted("amount", "regression", 3 * frame["x"].to_numpy() + 1, None)


@pytest.fixture(scope="session")
def churn_model() -> TrainedModel:
    """Says "yes" with a probability that grows with `x`."""
    frame = training_frame()
    noise = np.random.default_rng(1).normal(0, 0.5, len(frame))
    return fitted(
        "churned", "binary", (frame["x"] + noise > 0).to_numpy().astype(int), ["no", "yes"]
    )


@pytest.fixture(scope="session")
def color_model() -> TrainedModel:
    """Three classes, told apart by `color` alone."""
    frame = training_frame()
    return fitted("shade", "multiclass", frame["color"].map(COLORS.index).to_numpy(), COLORS)


@pytest.fixture(scope="session")
def flag_model() -> TrainedModel:
    """Two classes that are true/false (keys "false", "true"; labels stay booleans)."""
    frame = training_frame()
    return fitted("flag", "binary", (frame["x"] > 0).to_numpy().astype(int), [False, True])


@pytest.fixture
def predictor(amount_model: TrainedModel, churn_model: TrainedModel) -> Predictor:
    return Predictor.of([churn_model, amount_model], inputs=["x", "color"])
