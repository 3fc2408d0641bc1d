from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression

from mlmanager.engine.tests.training.conftest import (
    CLASSIFICATION_INPUTS,
    GENEROUS_BUDGET_S,
    KEY,
    classification_frame,
    write_parquet,
)
from mlmanager.engine.training import ensemble, search
from mlmanager.engine.training.child import SearchJob
from mlmanager.engine.training.evaluation import evaluate
from mlmanager.engine.training.status import OutputFolder, read_json
from mlmanager.engine.training.trials import Trial

TRIALS = [
    Trial("lgbm", {"n_estimators": 20, "num_leaves": 8}, loss=0.10, fit_time_s=0.05),
    Trial("rf", {"n_estimators": 20, "max_features": 0.5, "max_leaves": 16}, 0.12, 0.05),
    Trial("extra_tree", {"n_estimators": 20, "max_features": 0.5, "max_leaves": 16}, 0.13, 0.05),
    Trial("lgbm", {"n_estimators": 4, "num_leaves": 4}, loss=0.30, fit_time_s=0.01),
]


def test_selection_keeps_an_average_of_two_models_with_independent_errors():
    rng = np.random.default_rng(0)
    target = rng.normal(size=2000)
    first = target + rng.normal(scale=1.0, size=2000)
    second = target + rng.normal(scale=1.0, size=2000)
    weights, ensemble_loss, best_loss = ensemble._select([first, second], target, "rmse")
    assert weights.tolist() == pytest.approx([0.5, 0.5], abs=0.2)
    assert ensemble_loss < 0.8 * best_loss


def test_selection_keeps_the_best_model_alone_when_the_other_only_adds_noise():
    rng = np.random.default_rng(0)
    target = rng.normal(size=2000)
    weights, ensemble_loss, best_loss = ensemble._select(
        [target + 0.01 * rng.normal(size=2000), rng.normal(size=2000)], target, "rmse"
    )
    assert weights.tolist() == [1.0, 0.0]
    assert ensemble_loss == best_loss


def _keep_the_first_two(out_of_fold, target, metric):
    """A selection that keeps the two best members whether or not that helps."""
    weights = np.zeros(len(out_of_fold))
    weights[:2] = 0.5
    return weights, -1.0, 0.0


def test_an_ensemble_is_built_refitted_and_predicts(monkeypatch):
    monkeypatch.setattr(ensemble, "_select", _keep_the_first_two)
    features, target = make_classification(300, n_features=6, random_state=0)
    result = ensemble.build_if_better(
        features=features.astype(np.float32),
        target=target,
        task="binary",
        metric="roc_auc",
        trials=TRIALS,
        eval_method="cv",
        seed=0,
        n_jobs=1,
        deadline=time.time() + 60,
    )
    assert result is not None
    model, score, fit_time = result
    assert score == 1.0 and fit_time > 0  # the score _select reported, in AUC units
    assert [name for name, _, _ in model.members] == ["lgbm", "rf"]
    assert [weight for _, _, weight in model.members] == [0.5, 0.5]
    probabilities = model.predict_proba(features[:7])
    assert probabilities.shape == (7, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    assert model.predict(features[:7]).shape == (7,)
    assert model.description()["members"][0]["config"]


def test_a_regression_ensemble_on_a_holdout_split(monkeypatch):
    monkeypatch.setattr(ensemble, "_select", _keep_the_first_two)
    features, target = make_regression(300, n_features=5, noise=5, random_state=0)
    result = ensemble.build_if_better(
        features=features,
        target=target,
        task="regression",
        metric="rmse",
        trials=TRIALS,
        eval_method="holdout",
        seed=0,
        n_jobs=1,
        deadline=time.time() + 60,
    )
    assert result is not None
    assert result[0].predict(features[:4]).shape == (4,)


def test_no_ensemble_without_time_or_without_two_estimators():
    features, target = make_classification(100, random_state=0)
    arguments = {
        "features": features,
        "target": target,
        "task": "binary",
        "metric": "roc_auc",
        "eval_method": "cv",
        "seed": 0,
        "n_jobs": 1,
    }
    slow = [Trial(trial.estimator, trial.config, trial.loss, 100.0) for trial in TRIALS]
    assert ensemble.build_if_better(trials=slow, deadline=time.time() + 60, **arguments) is None
    single = [TRIALS[0], TRIALS[3]]
    assert ensemble.build_if_better(trials=single, deadline=time.time() + 60, **arguments) is None


def test_the_search_keeps_an_ensemble_as_its_model(tmp_path, monkeypatch):
    """The whole path in one process: search, ensemble checkpoint, evaluation."""
    monkeypatch.setattr(search, "ENSEMBLE_MIN_WINDOW_S", 0.0)
    monkeypatch.setattr(search, "ENSEMBLE_MAX_SHARE", 0.8)
    monkeypatch.setattr(ensemble, "_select", _keep_the_first_two)
    # FLAML's tiny first models, so that the ensemble fits in this short search.
    monkeypatch.setattr(search, "default_starting_points", lambda *args, **kwargs: {})
    # This test is about keeping an ensemble, not about its time check (tested above): the
    # ensemble gets its own minute, so a slow machine or coverage cannot make it skip.
    build = ensemble.build_if_better
    monkeypatch.setattr(
        ensemble,
        "build_if_better",
        lambda **arguments: build(**{**arguments, "deadline": time.time() + 60}),
    )
    monkeypatch.chdir(tmp_path)  # CatBoost's scratch folders
    path = write_parquet(tmp_path / "data.parquet", classification_frame(200))
    folder = OutputFolder(tmp_path / "output-1")
    folder.path.mkdir()
    job = SearchJob(
        parquet_path=str(path),
        folder=str(folder.path),
        inputs=CLASSIFICATION_INPUTS[:6],
        output="label",
        task="binary",
        metric="roc_auc",
        seed=0,
        max_candidates=None,
        search_deadline=time.time() + 6,
        hard_deadline=time.time() + 60,
        n_jobs=1,
        artifact_key=KEY,
        parent_pid=os.getpid(),
    )
    search.run_search(job, folder)

    status = read_json(folder.status)
    assert status["state"] == "done"
    assert status["best_estimator"] == status["checkpoint"]["estimator"] == "ensemble"
    assert status["leaderboard"][0]["estimator"] == "ensemble"
    assert [path.name for path in folder.path.glob("model-*.joblib")] == [
        Path(status["checkpoint"]["path"]).name
    ]
    model, metrics, importance = evaluate(
        model_path=Path(status["checkpoint"]["path"]),
        signature=status["checkpoint"]["signature"],
        key=KEY,
        holdout_path=folder.holdout,
        seed=0,
        n_jobs=1,
        deadline=time.monotonic() + GENEROUS_BUDGET_S,
    )
    assert isinstance(model.estimator, ensemble.EnsembleModel)
    assert metrics["roc_auc"] > 0.8
    assert len(importance) == 6
