"""End to end: train() on small Parquet files, then the saved models."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlmanager.engine.artifacts import ArtifactError
from mlmanager.engine.tests.training.conftest import (
    CLASSIFICATION_INPUTS,
    GENEROUS_BUDGET_S,
    KEY,
    REGRESSION_INPUTS,
    classification_frame,
    regression_frame,
    spec,
    write_parquet,
)
from mlmanager.engine.training import (
    TrainingError,
    TrainingOutcome,
    load_model,
    train,
)


@pytest.fixture(scope="module")
def binary(tmp_path_factory) -> tuple[TrainingOutcome, pd.DataFrame, list]:
    folder = tmp_path_factory.mktemp("binary")
    frame = classification_frame()
    path = write_parquet(folder / "data.parquet", frame)
    progress: list = []
    outcome = train(
        path,
        spec(CLASSIFICATION_INPUTS, ("label", "binary", "roc_auc"), max_candidates=4),
        workdir=folder / "work",
        artifact_key=KEY,
        on_progress=progress.append,
    )
    return outcome, frame, progress


def test_binary_trains_with_sensible_metrics(binary):
    outcome, _, _ = binary
    assert outcome.status == "succeeded"
    assert outcome.candidates == 4
    [result] = outcome.outputs
    assert (result.name, result.task, result.metric) == ("label", "binary", "roc_auc")
    metrics = result.metrics
    assert metrics["roc_auc"] > 0.8
    assert metrics["accuracy"] > 0.7
    assert {"balanced_accuracy", "f1", "log_loss"} <= set(metrics)
    assert metrics["confusion_matrix"]["labels"] == ["no", "yes"]
    assert np.sum(metrics["confusion_matrix"]["matrix"]) == 120  # the 20 % holdout
    json.dumps(metrics, allow_nan=False)


def test_the_shipped_model_is_refitted_on_all_rows_and_the_measured_one_is_not(binary):
    outcome, _, _ = binary
    [result] = outcome.outputs
    assert result.refit_on_all_rows
    assert result.artifact_path.name == "final.joblib"
    status = json.loads((result.artifact_path.parent / "status.json").read_text())
    assert status["final"]["rows"] == 600 and status["train_rows"] == 480
    measured = Path(status["checkpoint"]["path"])
    assert measured.is_file() and measured != result.artifact_path


def test_binary_leaderboard_importance_and_record(binary):
    outcome, _, progress = binary
    [result] = outcome.outputs
    board = result.leaderboard
    assert [row["estimator"] for row in board][:1] == [result.best_estimator]
    assert {row["estimator"] for row in board} == {"lgbm", "xgboost", "rf", "extra_tree"}
    assert board == sorted(board, key=lambda row: row["score"], reverse=True)
    assert all({"estimator", "config", "score", "fit_time_s"} == set(row) for row in board)
    importance = result.feature_importance
    assert {item["feature"] for item in importance} == {name for name, _ in CLASSIFICATION_INPUTS}
    assert importance == sorted(importance, key=lambda item: item["importance"], reverse=True)
    record = outcome.reproducibility
    assert record["seed"] == 0 and record["row_count"] == 600 and record["candidates"] == 4
    assert record["eval_method"] == "cv" and record["holdout_share"] == 0.2
    assert len(record["dataset_sha256"]) == 64
    assert set(record["libraries"]) == {
        "python",
        "flaml",
        "lightgbm",
        "xgboost",
        "catboost",
        "sklearn",
        "pandas",
        "numpy",
        "pyarrow",
    }
    json.dumps(record, allow_nan=False)
    assert progress and progress[-1].budget_s == GENEROUS_BUDGET_S
    assert progress[-1].best_score is not None
    assert all(0 <= item.elapsed_s <= GENEROUS_BUDGET_S for item in progress)


def test_a_saved_model_predicts_raw_rows_with_unseen_values_and_gaps(binary):
    outcome, frame, _ = binary
    [result] = outcome.outputs
    model = load_model(result.artifact_path, key=KEY, signature=result.artifact_signature)
    rows = pd.DataFrame(
        {
            "x0": [None, 0.5],
            "x1": ["1.5", 2.0],  # text from a form
            "color": ["purple", None],  # unseen and missing
            "member": ["yes", None],
            "signup": ["2030-06-01", None],
            "comment": ["never seen words", None],
            "unrelated": [1, 2],
        }
    )  # x2..x4 absent: treated as missing
    labels = model.predict(rows)
    probabilities = model.predict_proba(rows)
    assert set(labels) <= {"no", "yes"}
    assert probabilities.shape == (2, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    # On the training data it does about as well as on the holdout.
    accuracy = (model.predict(frame) == frame["label"].to_numpy()).mean()
    assert accuracy > 0.7
    # Rows keep their order whatever the frame's index.
    some = frame.iloc[[5, 3, 100]]
    np.testing.assert_array_equal(
        model.predict_proba(some), model.predict_proba(some.reset_index(drop=True))
    )
    assert model.predict(frame.iloc[[5]])[0] == model.predict(frame)[5]


def test_a_tampered_model_is_refused(binary, tmp_path: Path):
    outcome, _, _ = binary
    [result] = outcome.outputs
    copy = tmp_path / "model.joblib"
    data = bytearray(result.artifact_path.read_bytes())
    data[-10] ^= 0xFF
    copy.write_bytes(bytes(data))
    (tmp_path / "model.joblib.sig").write_text(result.artifact_signature)
    with pytest.raises(ArtifactError):
        load_model(copy, key=KEY, signature=result.artifact_signature)


def test_multiclass(tmp_path: Path):
    frame = classification_frame(450, classes=3, seed=1)
    path = write_parquet(tmp_path / "data.parquet", frame)
    outcome = train(
        path,
        spec(CLASSIFICATION_INPUTS, ("label", "multiclass", "log_loss"), max_candidates=3),
        workdir=tmp_path / "work",
        artifact_key=KEY,
    )
    [result] = outcome.outputs
    assert result.metrics["accuracy"] > 0.6
    assert result.metrics["macro_f1"] > 0.6
    assert result.metrics["confusion_matrix"]["labels"] == ["class 0", "class 1", "class 2"]
    model = load_model(result.artifact_path, key=KEY, signature=result.artifact_signature)
    assert model.predict_proba(frame.head(5)).shape == (5, 3)


def test_regression(tmp_path: Path):
    frame = regression_frame()
    path = write_parquet(tmp_path / "data.parquet", frame)
    outcome = train(
        path,
        spec(REGRESSION_INPUTS, ("amount", "regression", "rmse"), max_candidates=4),
        workdir=tmp_path / "work",
        artifact_key=KEY,
    )
    [result] = outcome.outputs
    metrics = result.metrics
    assert metrics["r2"] > 0.5
    assert metrics["rmse"] < frame["amount"].std()
    assert len(metrics["predicted_vs_actual"]["actual"]) == 80
    assert len(metrics["predicted_vs_actual"]["predicted"]) == 80
    assert result.leaderboard == sorted(result.leaderboard, key=lambda row: row["score"])


def test_multi_output_trains_one_model_per_output(tmp_path: Path):
    frame = classification_frame(300)
    frame["amount"] = frame["x1"] * 3 + frame["x2"]
    path = write_parquet(tmp_path / "data.parquet", frame)
    outcome = train(
        path,
        spec(
            [(f"x{i}", "numeric") for i in (0, 1, 2, 3)],
            ("label", "binary", "accuracy"),
            ("amount", "regression", "mae"),
            max_candidates=2,
        ),
        workdir=tmp_path / "work",
        artifact_key=KEY,
    )
    assert outcome.status == "succeeded"
    assert [result.name for result in outcome.outputs] == ["label", "amount"]
    assert outcome.candidates == 4
    assert "accuracy" in outcome.outputs[0].metrics and "mae" in outcome.outputs[1].metrics
    assert outcome.outputs[0].artifact_path != outcome.outputs[1].artifact_path
    assert set(outcome.reproducibility["outputs"]) == {"label", "amount"}


def test_same_seed_and_candidate_count_give_the_same_model(tmp_path: Path):
    frame = classification_frame(200, seed=4)
    path = write_parquet(tmp_path / "data.parquet", frame)
    inputs = [*CLASSIFICATION_INPUTS[:6], ("member", "boolean")]
    predictions = []
    for attempt in range(2):
        outcome = train(
            path,
            spec(inputs, ("label", "binary", "log_loss"), seed=7, max_candidates=4),
            workdir=tmp_path / f"work-{attempt}",
            artifact_key=KEY,
        )
        [result] = outcome.outputs
        model = load_model(result.artifact_path, key=KEY, signature=result.artifact_signature)
        tried = [(row["estimator"], row["config"], row["score"]) for row in result.leaderboard]
        predictions.append((tried, model.predict_proba(frame)))
    (first, first_predictions), (second, second_predictions) = predictions
    assert [row[:2] for row in first] == [row[:2] for row in second]
    # Scores agree to rounding: forests add up their trees on several threads while searching.
    assert [row[2] for row in first] == pytest.approx([row[2] for row in second], rel=1e-12)
    np.testing.assert_array_equal(first_predictions, second_predictions)


def test_a_category_with_100_000_levels_as_input_trains(tmp_path: Path):
    rng = np.random.default_rng(0)
    rows = 3_000
    customer = rng.integers(0, 100_000, rows)
    frame = pd.DataFrame(
        {
            "customer": [f"customer-{value}" for value in customer],
            "x": rng.normal(size=rows),
        }
    )
    frame["label"] = np.where(frame["x"] + rng.normal(scale=0.5, size=rows) > 0, "a", "b")
    path = write_parquet(tmp_path / "data.parquet", frame)
    outcome = train(
        path,
        spec(
            [("customer", "categorical"), ("x", "numeric")],
            ("label", "binary", "roc_auc"),
            max_candidates=2,
        ),
        workdir=tmp_path / "work",
        artifact_key=KEY,
    )
    [result] = outcome.outputs
    assert result.metrics["roc_auc"] > 0.8
    assert outcome.reproducibility["outputs"]["label"]["feature_count"] == 3


def test_a_target_with_one_value_fails_with_a_clear_message(tmp_path: Path):
    frame = regression_frame(100)
    frame["label"] = "same"
    path = write_parquet(tmp_path / "data.parquet", frame)
    with pytest.raises(TrainingError, match="only one value") as caught:
        train(
            path,
            spec(REGRESSION_INPUTS, ("label", "binary", "roc_auc"), max_candidates=1),
            workdir=tmp_path / "work",
            artifact_key=KEY,
        )
    assert caught.value.code == "unusable_target"
    assert multiprocessing.active_children() == []


def test_too_few_rows_with_a_target_fail_in_the_data(tmp_path: Path):
    frame = regression_frame(100)
    frame.loc[10:, "amount"] = np.nan
    path = write_parquet(tmp_path / "data.parquet", frame)
    with pytest.raises(TrainingError, match="Only 10 rows") as caught:
        train(
            path,
            spec(REGRESSION_INPUTS, ("amount", "regression", "rmse"), max_candidates=1),
            workdir=tmp_path / "work",
            artifact_key=KEY,
        )
    assert caught.value.code == "too_few_rows"


def test_a_missing_data_set_fails_at_once(tmp_path: Path):
    with pytest.raises(TrainingError, match="no longer there") as caught:
        train(
            tmp_path / "gone.parquet",
            spec(REGRESSION_INPUTS, ("amount", "regression", "rmse")),
            workdir=tmp_path / "work",
            artifact_key=KEY,
        )
    assert caught.value.code == "dataset_missing"


def test_a_crashed_search_is_reported_with_its_log(tmp_path: Path):
    path = tmp_path / "data.parquet"
    path.write_bytes(b"PAR1 this is not a parquet file PAR1")
    with pytest.raises(TrainingError, match="Training stopped unexpectedly") as caught:
        train(
            path,
            spec(REGRESSION_INPUTS, ("amount", "regression", "rmse")),
            workdir=tmp_path / "work",
            artifact_key=KEY,
        )
    assert caught.value.code == "crashed"
    assert "Traceback" in caught.value.details
    assert multiprocessing.active_children() == []


def test_a_search_killed_after_a_checkpoint_finishes_from_that_checkpoint(tmp_path: Path):
    """An out-of-memory kill (here SIGKILL) after a model was saved does not lose the run."""
    import os
    import signal

    path = write_parquet(tmp_path / "data.parquet", classification_frame())
    status_path = tmp_path / "work" / "output-1" / "status.json"
    killed: list[int] = []

    def kill_after_first_checkpoint(progress) -> None:
        if killed or not status_path.exists():
            return
        try:
            status = json.loads(status_path.read_text())
        except ValueError:
            return
        if status.get("checkpoint"):
            os.kill(status["pid"], signal.SIGKILL)
            killed.append(status["pid"])

    # Timed, so the first chunk (a tenth of the budget, however slow its trials) writes the
    # checkpoint and the kill lands in the next one; counted chunks of 12 take longer.
    outcome = train(
        path,
        spec(CLASSIFICATION_INPUTS, ("label", "binary", "roc_auc"), budget=120),
        workdir=tmp_path / "work",
        artifact_key=KEY,
        on_progress=kill_after_first_checkpoint,
    )
    assert killed
    assert outcome.status == "succeeded"
    [result] = outcome.outputs
    # The checkpoint, taken at once (no refit on all rows, which the search did not reach).
    assert not result.refit_on_all_rows
    assert result.metrics["roc_auc"] > 0.8
    model = load_model(result.artifact_path, key=KEY, signature=result.artifact_signature)
    assert len(model.predict(classification_frame().head(5))) == 5
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize("max_candidates", [1, 13])
def test_a_cap_leaving_one_candidate_ends_promptly(tmp_path: Path, max_candidates: int):
    """FLAML logs no trial for a one-iteration fit; a chunk of one used to repeat until the
    deadline."""
    frame = regression_frame()
    path = write_parquet(tmp_path / "data.parquet", frame)
    outcome = train(
        path,
        spec(
            REGRESSION_INPUTS,
            ("amount", "regression", "rmse"),
            max_candidates=max_candidates,
        ),
        workdir=tmp_path / "work",
        artifact_key=KEY,
    )
    # Before: one candidate ended "timed_out" with no model; thirteen stopped at twelve.
    assert outcome.status == "succeeded"
    assert max_candidates <= outcome.candidates <= max(max_candidates, 2)
