"""The evaluation's baseline (training majority class or mean, on the holdout rows), the curves
it stores for the model page, and the decision threshold's choice of label."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import metrics as sk
from sklearn.linear_model import LogisticRegression

from mlmanager.engine.artifacts import write_artifact
from mlmanager.engine.training import metrics
from mlmanager.engine.training.evaluation import evaluate
from mlmanager.engine.training.model import TrainedModel, chosen_classes
from mlmanager.engine.training.preprocessing import build_preprocessor

KEY = b"evaluation-test-key"


def _scored_rows(rows: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Class indices (about 30 % positive) and noisy probabilities that rank them fairly."""
    rng = np.random.default_rng(seed)
    target = (rng.random(rows) < 0.3).astype(np.int64)
    positive = np.clip(0.25 + 0.35 * target + rng.normal(0, 0.2, rows), 0.001, 0.999)
    return target, np.column_stack([1 - positive, positive])


def test_the_classification_baseline_is_the_training_majority_class_on_the_holdout() -> None:
    target = np.array([0, 0, 0, 1, 1, 1, 1, 1])  # the holdout: 5 of 8 positive
    # The training rows were mostly negative: the baseline says "negative" for every row.
    summary = metrics.target_summary("binary", np.array([0] * 70 + [1] * 30), class_count=2)
    assert summary == {"class_counts": [70, 30]}
    baseline = metrics.baseline_metrics("binary", target, summary)
    assert baseline["accuracy"] == 3 / 8
    assert baseline["balanced_accuracy"] == 0.5
    assert baseline["f1"] == 0.0
    assert baseline["roc_auc"] == 0.5
    expected_log_loss = -(3 * np.log(0.7) + 5 * np.log(0.3)) / 8
    assert baseline["log_loss"] is not None
    assert abs(baseline["log_loss"] - expected_log_loss) < 1e-12
    many = metrics.baseline_metrics(
        "multiclass", np.array([0, 1, 2, 2]), {"class_counts": [1, 1, 8]}
    )
    assert (many["accuracy"], many["roc_auc"]) == (0.5, 0.5)
    assert set(many) == {"accuracy", "balanced_accuracy", "macro_f1", "roc_auc", "log_loss"}


def test_the_regression_baseline_is_the_training_mean() -> None:
    target = np.array([1.0, 2.0, 3.0, 6.0])
    baseline = metrics.baseline_metrics("regression", target, {"mean": 2.0})
    assert baseline["mae"] == (1 + 0 + 1 + 4) / 4
    assert baseline["rmse"] == np.sqrt((1 + 0 + 1 + 16) / 4)
    assert baseline["r2"] is not None and baseline["r2"] < 0  # the holdout mean is 3, not 2
    assert metrics.target_summary("regression", np.array([1.0, np.nan, 3.0])) == {"mean": 2.0}


def test_curves_are_downsampled_and_precision_recall_exact_at_two_decimal_thresholds() -> None:
    target, probabilities = _scored_rows()
    result = metrics.holdout_metrics("binary", target, probabilities, classes=["no", "yes"], seed=0)
    roc, pr = result["roc_curve"], result["precision_recall_curve"]
    assert 2 <= len(roc["fpr"]) == len(roc["tpr"]) <= metrics.CURVE_POINTS
    assert (roc["fpr"][0], roc["tpr"][-1]) == (0.0, 1.0)
    assert len(pr["thresholds"]) == len(pr["precision"]) == len(pr["recall"])
    assert len(pr["thresholds"]) <= metrics.CURVE_POINTS
    for threshold in (0.2, 0.35, 0.5, 0.71):
        predicted = probabilities[:, 1] >= threshold
        index = min(i for i, t in enumerate(pr["thresholds"]) if t >= threshold)
        assert pr["precision"][index] == round(sk.precision_score(target, predicted), 4)
        assert pr["recall"][index] == round(sk.recall_score(target, predicted), 4)
    calibration = result["calibration"]
    assert sum(calibration["count"]) == len(target)
    assert len(calibration["predicted"]) == len(calibration["observed"]) <= 10
    assert all(0 <= share <= 1 for share in calibration["observed"])


def test_multiclass_curves_and_regression_error_by_range() -> None:
    rng = np.random.default_rng(1)
    target = rng.integers(0, 3, 300)
    probabilities = rng.dirichlet([1, 1, 1], 300)
    result = metrics.holdout_metrics(
        "multiclass", target, probabilities, classes=["a", "b", "c"], seed=0
    )
    assert len(result["roc_curve"]["fpr"]) <= metrics.CURVE_POINTS
    assert sum(result["calibration"]["count"]) == 300

    actual = np.arange(100, dtype=float)
    predicted = actual + np.where(actual < 50, 1.0, -3.0)
    regression = metrics.holdout_metrics("regression", actual, predicted, classes=None, seed=0)
    ranges = regression["error_by_range"]
    assert len(ranges) == metrics.ERROR_RANGE_BINS
    assert sum(item["rows"] for item in ranges) == 100
    assert (ranges[0]["low"], ranges[-1]["high"]) == (0.0, 99.0)
    assert (ranges[0]["mae"], ranges[0]["bias"]) == (1.0, 1.0)
    assert (ranges[-1]["mae"], ranges[-1]["bias"]) == (3.0, -3.0)


def test_a_one_class_holdout_has_no_curves_but_a_baseline() -> None:
    target = np.zeros(5, dtype=np.int64)
    probabilities = np.column_stack([np.full(5, 0.8), np.full(5, 0.2)])
    result = metrics.holdout_metrics("binary", target, probabilities, classes=[0, 1], seed=0)
    assert result["roc_curve"] is None and result["precision_recall_curve"] is None
    baseline = metrics.baseline_metrics("binary", target, {"class_counts": [3, 1]})
    assert (baseline["accuracy"], baseline["roc_auc"]) == (1.0, None)


def _binary_model(tmp_path: Path, *, target_summary: dict | None) -> tuple[Path, str, Path]:
    """A logistic regression on one input, saved as an artifact, and a holdout whose majority
    class ("yes", 70 %) is not the training rows' one."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    frame = pd.DataFrame({"x": x})
    inputs = [("x", "numeric")]
    preprocessor = build_preprocessor(inputs, frame)
    labels = (x + rng.normal(0, 1, 200) > 0).astype(int)
    estimator = LogisticRegression().fit(preprocessor.fit_transform(frame), labels)
    model = TrainedModel(
        output="churned",
        task="binary",
        metric="roc_auc",
        inputs=inputs,
        preprocessor=preprocessor,
        estimator=estimator,
        estimator_name="lrl1",
        classes=["no", "yes"],
        target_summary=target_summary,
    )
    path = tmp_path / "model.joblib"
    signature = write_artifact(model, path, key=KEY)
    holdout_x = rng.normal(size=50)
    holdout = pd.DataFrame({"x": holdout_x, "churned": np.where(np.arange(50) < 35, "yes", "no")})
    holdout_path = tmp_path / "holdout.parquet"
    holdout.to_parquet(holdout_path, index=False)
    return path, signature, holdout_path


def test_evaluate_stores_the_baseline_of_the_training_rows_and_the_curves(tmp_path: Path) -> None:
    path, signature, holdout = _binary_model(tmp_path, target_summary={"class_counts": [80, 20]})
    _model, result, _importance = evaluate(
        model_path=path,
        signature=signature,
        key=KEY,
        holdout_path=holdout,
        seed=0,
        n_jobs=1,
        deadline=time.monotonic() + 60,
    )
    # The training rows' majority is "no": right on the holdout's 15 "no" rows of 50.
    assert result["baseline"]["accuracy"] == 15 / 50
    assert result["baseline"]["roc_auc"] == 0.5
    assert result["roc_curve"] is not None and result["calibration"] is not None

    path, signature, holdout = _binary_model(tmp_path / "old", target_summary=None)
    _model, result, _importance = evaluate(
        model_path=path,
        signature=signature,
        key=KEY,
        holdout_path=holdout,
        seed=0,
        n_jobs=1,
        deadline=time.monotonic() + 60,
    )
    # A model saved without the training summary falls back on the holdout's majority.
    assert result["baseline"]["accuracy"] == 35 / 50


def test_a_decision_threshold_chooses_the_positive_class_from_that_probability() -> None:
    probabilities = np.array([[0.7, 0.3], [0.5, 0.5], [0.2, 0.8]])
    assert chosen_classes(probabilities).tolist() == [0, 0, 1]  # the more probable class
    assert chosen_classes(probabilities, 0.3).tolist() == [1, 1, 1]
    assert chosen_classes(probabilities, 0.81).tolist() == [0, 0, 0]
    three = np.array([[0.2, 0.3, 0.5]])
    assert chosen_classes(three, 0.1).tolist() == [2]  # only two classes have a threshold
    model = TrainedModel(
        output="y",
        task="binary",
        metric="roc_auc",
        inputs=[],
        preprocessor=None,
        estimator=None,
        estimator_name="none",
        classes=[False, True],
    )
    assert model.labels(probabilities, 0.4).tolist() == [False, True, True]
    assert model.target_summary is None


def test_non_finite_probabilities_leave_the_curves_out_not_the_version() -> None:
    target = np.array([0, 1, 0, 1])
    probabilities = np.array([[0.8, 0.2], [np.nan, np.nan], [0.6, 0.4], [0.1, 0.9]])
    result = metrics.holdout_metrics("binary", target, probabilities, classes=[0, 1], seed=0)
    assert (result["roc_curve"], result["calibration"]) == (None, None)
    assert result["holdout_rows"] == 4
