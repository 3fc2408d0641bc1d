"""The parent's view of a search: every candidate reported once, for a job log line each."""

from __future__ import annotations

import json
from pathlib import Path

from mlmanager.engine.training.status import OutputFolder, write_json
from mlmanager.engine.training.trials import TrialFollower
from mlmanager.engine.training.watch import SearchWatch


def _line(learner: str, loss: float) -> str:
    return json.dumps(
        {
            "learner": learner,
            "validation_loss": loss,
            "config": {"n_estimators": 4},
            "trial_time": 0.1,
        }
    )


def test_a_last_line_without_newline_counts_once_the_writer_ended(tmp_path: Path) -> None:
    log = tmp_path / "trials-0.jsonl"
    log.write_text(_line("lgbm", 0.3) + "\n" + _line("rf", 0.2), encoding="utf-8")
    follower = TrialFollower(log)
    assert [trial.estimator for trial in follower.new_trials()] == ["lgbm"]
    assert [trial.estimator for trial in follower.new_trials(final=True)] == ["rf"]
    assert follower.new_trials(final=True) == []


def test_each_candidate_is_reported_once_across_chunks(tmp_path: Path) -> None:
    folder = OutputFolder(tmp_path)
    watch = SearchWatch(folder=folder, metric="roc_auc")
    write_json(folder.status, {"state": "searching", "chunk": 0, "candidates": 0})
    (tmp_path / "trials-0.jsonl").write_text(_line("lgbm", 0.3) + "\n", encoding="utf-8")
    watch.refresh()
    assert [trial.estimator for trial in watch.take_unreported()] == ["lgbm"]
    # The chunk ends with one more candidate the parent has not read, and the next begins.
    with open(tmp_path / "trials-0.jsonl", "a", encoding="utf-8") as handle:
        handle.write(_line("xgboost", 0.25) + "\n")
    (tmp_path / "trials-1.jsonl").write_text(_line("rf", 0.2) + "\n", encoding="utf-8")
    write_json(folder.status, {"state": "searching", "chunk": 1, "candidates": 2, "x": 1})
    watch.refresh()
    assert [trial.estimator for trial in watch.take_unreported()] == ["xgboost", "rf"]
    assert watch.take_unreported() == []
    assert watch.candidates == 3
    score, estimator = watch.best()
    assert estimator == "rf" and score == 0.8
