from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mlmanager.engine.training import metrics
from mlmanager.engine.training.trials import (
    Trial,
    TrialFollower,
    leaderboard,
    read_trials,
    score_from_loss,
)


def _line(learner: str, loss: float, seconds: float = 0.1) -> str:
    record = {
        "record_id": 0,
        "iter_per_learner": 1,
        "logged_metric": {},
        "trial_time": seconds,
        "wall_clock_time": 1.0,
        "validation_loss": loss,
        "config": {"n_estimators": 4, "FLAML_sample_size": 100},
        "learner": learner,
        "sample_size": 100,
    }
    return json.dumps(record) + "\n"


def test_losses_become_scores_in_the_metric_units():
    assert score_from_loss("roc_auc", 0.08) == pytest.approx(0.92)
    assert score_from_loss("rmse", 3.5) == 3.5


def test_the_follower_reads_only_complete_new_lines(tmp_path: Path):
    log = tmp_path / "trials-0.jsonl"
    follower = TrialFollower(log)
    assert follower.new_trials() == []  # not there yet
    line = _line("lgbm", 0.2)
    log.write_text(_line("rf", 0.3) + line[:20])
    assert [trial.estimator for trial in follower.new_trials()] == ["rf"]
    with open(log, "a") as handle:
        handle.write(line[20:] + '{"curr_best_record_id": 0}\n')
    [trial] = follower.new_trials()
    assert (trial.estimator, trial.loss, trial.config) == ("lgbm", 0.2, {"n_estimators": 4})
    assert read_trials(log) == [Trial("rf", {"n_estimators": 4}, 0.3, 0.1), trial]


def test_leaderboard_is_best_first_with_every_estimator():
    trials = [Trial(f"e{i % 3}", {"i": i}, loss=float(i), fit_time_s=1.0) for i in range(10)]
    board = leaderboard(trials, "roc_auc", limit=4)
    assert [row["config"]["i"] for row in board] == [0, 1, 2, 3]
    assert [row["score"] for row in board] == [1.0, 0.0, -1.0, -2.0]
    chosen = leaderboard([*trials, Trial("ensemble", {}, 5.0, 1.0)], "rmse", chosen="ensemble")
    assert chosen[0]["estimator"] == "ensemble"


def test_holdout_metrics_for_classification_and_regression():
    target = np.array([0, 1, 1, 0, 1])
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.6, 0.4], [0.7, 0.3]])
    result = metrics.holdout_metrics("binary", target, probabilities, classes=[False, True], seed=0)
    assert result["accuracy"] == 0.8
    assert result["roc_auc"] == pytest.approx(5 / 6)
    assert result["confusion_matrix"] == {"labels": [False, True], "matrix": [[2, 0], [1, 2]]}
    one_class = metrics.holdout_metrics(
        "binary", target[:1], probabilities[:1], classes=[0, 1], seed=0
    )
    assert one_class["roc_auc"] is None  # undefined, not an error
    regression = metrics.holdout_metrics(
        "regression", np.arange(600.0), np.arange(600.0) + 1, classes=None, seed=0
    )
    assert regression["rmse"] == pytest.approx(1.0) and regression["mae"] == pytest.approx(1.0)
    assert len(regression["predicted_vs_actual"]["actual"]) == 500
