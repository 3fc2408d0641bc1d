"""What a training run is asked to do, what it reports back, and the error it raises."""

from __future__ import annotations

import dataclasses
from pathlib import Path

TASKS = ("binary", "multiclass", "regression")
# The metrics a user may optimise, per task; the first of each is not necessarily the default.
METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("roc_auc", "log_loss", "accuracy", "balanced_accuracy", "f1"),
    "multiclass": ("log_loss", "accuracy", "balanced_accuracy", "macro_f1"),
    "regression": ("rmse", "mae", "r2"),
}
DEFAULT_METRIC = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}
# Metrics where a larger value is better; the others (losses and errors) are minimised.
HIGHER_IS_BETTER = frozenset({"roc_auc", "accuracy", "balanced_accuracy", "f1", "macro_f1", "r2"})
# Level 1-5 as offered to users: 1 min, 5 min, 15 min, 1 h, 4 h.
LEVEL_BUDGET_S = {1: 60, 2: 300, 3: 900, 4: 3600, 5: 14400}
MIN_BUDGET_S = 10
MAX_BUDGET_S = 24 * 3600
# Input column types the preprocessing turns into features; the other profile types are dropped.
USABLE_INPUT_TYPES = frozenset(
    {"numeric", "integer", "categorical", "boolean", "datetime", "text", "json"}
)
# Share of the rows with a target value kept aside to measure the final model.
HOLDOUT_SHARE = 0.2
# Folds of the cross-validation the search uses on smaller data sets.
CV_FOLDS = 5
DISK_FULL_MESSAGE = (
    "The disk holding the models is full, so this model could not be saved. Free space in "
    "the data folder (or ask the administrator to), then train again."
)
DATASET_GONE_MESSAGE = (
    "The data set's file is no longer there; it may have been deleted while the model was "
    "being set up or trained."
)


class TrainingError(Exception):
    """A run that cannot go on, with a message a non-programmer understands.

    `code` is stable for programs; `details` holds what a developer needs (a log tail) and is
    not meant to be shown as the message.
    """

    def __init__(self, message: str, *, code: str = "invalid_training", details: str = ""):
        super().__init__(message)
        self.message = message
        self.code = code
        self.details = details


@dataclasses.dataclass(frozen=True)
class OutputSpec:
    name: str
    task: str
    metric: str


@dataclasses.dataclass(frozen=True)
class TrainingSpec:
    # (column name, profile type from engine.profiling.COLUMN_TYPES)
    inputs: list[tuple[str, str]]
    outputs: list[OutputSpec]
    time_budget_s: float
    seed: int = 0
    # Same seed + same candidate count -> same model (the search then ignores the clock).
    max_candidates: int | None = None


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One candidate the search tried, as the parent read it from FLAML's trial log."""

    output: str
    estimator: str  # FLAML's name of the model family ("lgbm", "rf", "enet", ...)
    config: dict
    # The search's score: cross-validated ("cv") or on its validation split ("holdout"),
    # never the holdout the final model is measured on. None when the candidate failed.
    score: float | None
    fit_time_s: float
    elapsed_s: float  # since the run started, when the parent saw it


@dataclasses.dataclass
class Progress:
    elapsed_s: float
    budget_s: float
    candidates: int
    best_score: float | None
    best_estimator: str | None
    message: str
    # The candidates tried since the previous report, oldest first.
    new_candidates: list[Candidate] = dataclasses.field(default_factory=list)
    # How the search scores candidates: "cv" (cross-validation) or "holdout" (a validation
    # split of the training rows); None until the data is read.
    eval_method: str | None = None
    output: str | None = None  # the output being searched


@dataclasses.dataclass
class OutputResult:
    name: str
    task: str
    metric: str
    artifact_path: Path
    artifact_signature: str
    metrics: dict
    leaderboard: list[dict]
    feature_importance: list[dict]
    best_estimator: str
    # True when the artifact is the best model refitted on the holdout rows too (the metrics
    # are always those of the model before that refit, which never saw the holdout).
    refit_on_all_rows: bool = False


@dataclasses.dataclass
class TrainingOutcome:
    status: str  # "succeeded" | "cancelled" | "timed_out"
    outputs: list[OutputResult]
    candidates: int
    elapsed_s: float
    reproducibility: dict


def higher_is_better(metric: str) -> bool:
    return metric in HIGHER_IS_BETTER


def usable_inputs(inputs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The inputs preprocessing can use: identifiers, constants and empty columns never are."""
    return [(name, kind) for name, kind in inputs if kind in USABLE_INPUT_TYPES]
