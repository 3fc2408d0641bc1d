"""Versions that show every part of the model page without training: what a real training
records for its charts (metrics with a baseline, curves, a leaderboard, importance). Shared by
the page tests that must see every chart drawn (the CSP browser test, the preferences scan).

The numbers are as computations leave them (0.29999999999999993): pages must not show that.
"""

from __future__ import annotations

from typing import Any

from mlmanager.machines.models import Machine
from mlmanager.machines.tests.conftest import make_version


def chart_metrics(task: str) -> dict[str, Any]:
    """A confusion matrix and curves for classification, a scatter and error by range for
    regression."""
    if task == "regression":
        spread = {"actual": [10.5, 40.25, 90.75], "predicted": [12.5, 35.25, 80.5]}
        ranges = [{"low": 10.5, "high": 90.75, "rows": 3, "mae": 5.25, "bias": -4.25}]
        return {
            "rmse": 4.25,
            "r2": 0.9125,
            "predicted_vs_actual": spread,
            "error_by_range": ranges,
            "holdout_rows": 60,
        }
    matrix = {"labels": ["no", "yes"], "matrix": [[30, 6], [4, 20]]}
    return {
        "roc_auc": 0.8812,
        "accuracy": 0.8312,
        "log_loss": 0.29999999999999993,
        "confusion_matrix": matrix,
        "roc_curve": {"fpr": [0.0, 0.2, 1.0], "tpr": [0.0, 0.7, 1.0]},
        "precision_recall_curve": {
            "precision": [0.4, 0.7, 0.9],
            "recall": [1.0, 0.8, 0.3],
            "thresholds": [0.1, 0.4, 0.8],
        },
        "calibration": {"predicted": [0.2, 0.7], "observed": [0.25, 0.6], "count": [30, 30]},
        "holdout_rows": 60,
    }


def show_every_chart(machine: Machine) -> None:
    """The active version's outputs as a real training records them."""
    version = machine.active_version
    assert version is not None
    version.outputs = [
        {
            **output,
            "metrics": chart_metrics(output["task"]),
            # Above the model's accuracy, so the page shows its "does not beat" warning too.
            "baseline": {"accuracy": 0.9, "roc_auc": 0.5, "rmse": 30.0, "r2": 0.0},
            "leaderboard": [
                {
                    "estimator": "lgbm",
                    "config": {"n_estimators": 4},
                    "score": 0.8,
                    "fit_time_s": 1.25,
                }
            ],
            "feature_importance": [
                {"feature": "tenure_months", "importance": 0.3125, "std": 0.0212},
                {"feature": "plan", "importance": 0.1, "std": 0.01},
            ],
        }
        for output in version.outputs
    ]
    version.save(update_fields=["outputs"])


def regression_model(owner: Any, dataset_id: int) -> Machine:
    """A model whose version (recorded, not trained) shows the regression charts."""
    machine = Machine.objects.create(
        team=owner.current_team,
        created_by=owner,
        name="Spend model",
        dataset_id=dataset_id,
        inputs=["plan", "tenure_months"],
        outputs=[{"name": "spend", "task": "regression", "metric": "rmse"}],
        time_budget_s=60,
        storage_dir="machines/showcase-spend",
    )
    make_version(machine)
    show_every_chart(machine)
    return machine
