"""Small synthetic data sets written to Parquet, and a quick way to train on them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.datasets import make_classification, make_regression

from mlmanager.engine.training import OutputSpec, TrainingSpec
from mlmanager.engine.training.process import warm_up

KEY = b"training-test-key"
# Tests bound a search by candidates (max_candidates), not by seconds: a slow or shared machine
# (a LightGBM trial took 5-16 s at load 8 on 2 cores) then only makes a test slower, never
# failing with "No model could be trained within the time budget". The budget is generous so
# that it never ends a counted search; tests about the budget itself pass their own.
GENEROUS_BUDGET_S = 600.0
# What a loaded machine may add to a wall-clock bound the engine promises (the budget's hard
# limit, a cancel's few seconds): the tests about those bounds assert them with this margin.
LOAD_MARGIN_S = 15.0


@pytest.fixture(scope="session", autouse=True)
def _search_processes_ready() -> None:
    """Start the fork server (it imports the ML libraries, a few seconds) once, up front, so
    that no test's timing depends on whether it happens to run first."""
    warm_up()


COLORS = np.array(["red", "green", "blue", "yellow"])


def write_parquet(path: Path, frame: pd.DataFrame) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    return path


def classification_frame(
    rows: int = 600, *, classes: int = 2, seed: int = 0, labels: list | None = None
) -> pd.DataFrame:
    """An easy problem with every input type: numbers (some missing), a category, a flag,
    a date and free text. `label` is the target."""
    features, target = make_classification(
        n_samples=rows,
        n_features=5,
        n_informative=4,
        n_redundant=0,
        n_classes=classes,
        class_sep=1.5,
        random_state=seed,
    )
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(features, columns=[f"x{i}" for i in range(5)])
    frame.loc[rng.random(rows) < 0.1, "x0"] = np.nan
    frame["color"] = COLORS[rng.integers(0, len(COLORS), rows)]
    frame.loc[rng.random(rows) < 0.05, "color"] = None
    frame["member"] = rng.random(rows) < 0.5
    frame["signup"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(
        rng.integers(0, 365, rows), unit="D"
    )
    frame["comment"] = np.where(target == 1, "works well", "broke after a week")
    frame.loc[rng.random(rows) < 0.3, "comment"] = "no comment"
    names = labels or (["no", "yes"] if classes == 2 else [f"class {i}" for i in range(classes)])
    frame["label"] = np.array(names, dtype=object)[target]
    return frame


CLASSIFICATION_INPUTS = [
    ("x0", "numeric"),
    ("x1", "numeric"),
    ("x2", "numeric"),
    ("x3", "numeric"),
    ("x4", "numeric"),
    ("color", "categorical"),
    ("member", "boolean"),
    ("signup", "datetime"),
    ("comment", "text"),
]


def regression_frame(rows: int = 400, *, seed: int = 0) -> pd.DataFrame:
    features, target = make_regression(
        n_samples=rows, n_features=4, n_informative=3, noise=5.0, random_state=seed
    )
    frame = pd.DataFrame(features, columns=[f"x{i}" for i in range(4)])
    frame["amount"] = target
    return frame


REGRESSION_INPUTS = [(f"x{i}", "numeric") for i in range(4)]


def spec(
    inputs: list[tuple[str, str]],
    *outputs: tuple[str, str, str],
    budget: float = GENEROUS_BUDGET_S,
    seed: int = 0,
    max_candidates: int | None = None,
) -> TrainingSpec:
    return TrainingSpec(
        inputs=inputs,
        outputs=[OutputSpec(*output) for output in outputs],
        time_budget_s=budget,
        seed=seed,
        max_candidates=max_candidates,
    )
