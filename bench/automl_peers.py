"""One system of the AutoML benchmark in its own process: fit, predict the test rows, time them.

bench/automl.py starts this script once per dataset, seed and system, in the project's venv
(mlmanager, flaml, lightgbm) or in the peers' venv (autogluon), and reads back what it wrote:

- `<out>/result.json`: fit time (the library's fit call only: what the budget goal is about),
  batch predict time, single-row predict latency (median and 95th percentile of
  `--latency-rows` single-row predictions after `--warm-up` ones, the rows taken from the test
  split), what the system chose, library versions, or the error;
- `<out>/predictions.parquet`: for the test split, one column per class (probabilities, named
  by the class label) or a `prediction` column (regression). The parent computes every metric
  from these, the same way for every system.

The systems, each given the same train split (a Parquet file) and the same time budget:

- `mlmanager`: the platform's engine (`mlmanager.engine.training.train`), inputs typed by the
  platform's own profiler, the signed artifact loaded back with `load_model` and timed;
- `flaml`: FLAML's `AutoML` alone, default settings, the raw frame as read from Parquet;
- `autogluon`: `TabularPredictor(...).fit(presets="medium_quality")`, tree and linear models
  only (the torch-based models are not installed), models persisted in memory for prediction;
- `lightgbm`: `LGBMClassifier` / `LGBMRegressor` with default parameters (text columns as
  pandas categories), no search: the floor the engine must not fall below.

Classification probabilities are timed with `predict_proba`, regression with `predict`.
Exit codes: 0 done, 1 the system failed (the error is in result.json), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import secrets
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
# bench/datasets.py must not shadow the `datasets` package that some libraries import lazily.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != BENCH]

import numpy as np  # noqa: E402 - after the sys.path fix above
import pandas as pd  # noqa: E402

SYSTEMS = ("mlmanager", "flaml", "autogluon", "lightgbm")
TASKS = ("binary", "multiclass", "regression")
# The metric each system optimises, per the engine's names (spec.DEFAULT_METRIC).
FLAML_METRICS = {"roc_auc": "roc_auc", "log_loss": "log_loss", "rmse": "rmse"}
AUTOGLUON_METRICS = {
    "roc_auc": "roc_auc",
    "log_loss": "log_loss",
    "rmse": "root_mean_squared_error",
}
# AutoGluon's medium_quality models that need torch, which the peers' venv leaves out.
AUTOGLUON_EXCLUDED = ["NN_TORCH", "FASTAI"]
REPO = BENCH.parent


@dataclass
class Job:
    system: str
    train: Path
    test: Path
    target: str
    task: str
    metric: str
    budget_s: float
    seed: int
    out: Path
    latency_rows: int
    warm_up: int


@dataclass
class Fitted:
    """A fitted system: `predict` gives probabilities (columns in `classes` order) or values."""

    predict: Callable[[pd.DataFrame], np.ndarray]
    classes: list[str] | None
    details: dict[str, Any] = field(default_factory=dict)


# --- The systems ---------------------------------------------------------------------------


def fit_mlmanager(job: Job, train: pd.DataFrame) -> Fitted:
    from mlmanager.engine.profiling import profile_parquet
    from mlmanager.engine.training import OutputSpec, TrainingSpec, load_model
    from mlmanager.engine.training import train as train_engine

    # Profiling happens at upload in the platform, before any training: timed apart.
    started = time.perf_counter()
    profile = profile_parquet(job.train)
    profile_s = time.perf_counter() - started
    inputs = [
        (column["name"], column["type"])
        for column in profile["columns"]
        if column["name"] != job.target
    ]
    spec = TrainingSpec(
        inputs=inputs,
        outputs=[OutputSpec(job.target, job.task, job.metric)],
        time_budget_s=job.budget_s,
        seed=job.seed,
    )
    key = secrets.token_bytes(32)
    outcome = train_engine(job.train, spec, workdir=job.out / "mlmanager", artifact_key=key)
    if not outcome.outputs:
        raise RuntimeError(f"the engine ended {outcome.status} without a model")
    output = outcome.outputs[0]
    model = load_model(output.artifact_path, key=key, signature=output.artifact_signature)
    classes = None if job.task == "regression" else [str(label) for label in model.classes]
    predict = model.predict if job.task == "regression" else model.predict_proba
    return Fitted(
        predict=lambda frame: np.asarray(predict(frame)),
        classes=classes,
        details={
            "status": outcome.status,
            "best": output.best_estimator,
            "candidates": outcome.candidates,
            "engine_elapsed_s": round(outcome.elapsed_s, 2),
            "profile_s": round(profile_s, 2),
            "input_types": {name: kind for name, kind in inputs},
            "holdout": {
                name: value
                for name, value in output.metrics.items()
                if isinstance(value, int | float)
            },
            "artifact_bytes": Path(output.artifact_path).stat().st_size,
        },
    )


def fit_flaml(job: Job, train: pd.DataFrame) -> Fitted:
    from flaml import AutoML

    features, labels = train.drop(columns=[job.target]), train[job.target]
    automl = AutoML()
    automl.fit(
        X_train=features,
        y_train=labels,
        task="regression" if job.task == "regression" else "classification",
        metric=FLAML_METRICS[job.metric],
        time_budget=job.budget_s,
        seed=job.seed,
        verbose=0,
        log_file_name="",
    )
    details = {"best": automl.best_estimator, "best_config": automl.best_config}
    if job.task == "regression":
        return Fitted(predict=lambda frame: automl.predict(frame), classes=None, details=details)
    classes = [str(label) for label in automl.classes_]
    return Fitted(
        predict=lambda frame: automl.predict_proba(frame), classes=classes, details=details
    )


def fit_autogluon(job: Job, train: pd.DataFrame) -> Fitted:
    from autogluon.tabular import TabularPredictor

    predictor = TabularPredictor(
        label=job.target,
        problem_type=job.task,
        eval_metric=AUTOGLUON_METRICS[job.metric],
        path=str(job.out / "autogluon"),
        verbosity=0,
    )
    predictor.fit(
        train,
        time_limit=job.budget_s,
        presets="medium_quality",
        excluded_model_types=AUTOGLUON_EXCLUDED,
    )
    # Keeps the models in memory: otherwise every prediction loads them from disk.
    predictor.persist()
    leaderboard = predictor.leaderboard(silent=True)
    details = {
        "best": predictor.model_best,
        "models": len(leaderboard),
        "leaderboard": leaderboard[["model", "score_val"]].head(5).to_dict("records"),
    }
    if job.task == "regression":
        return Fitted(
            predict=lambda frame: predictor.predict(frame).to_numpy(), classes=None, details=details
        )
    classes = [str(label) for label in predictor.class_labels]

    def predict(frame: pd.DataFrame) -> np.ndarray:
        probabilities = predictor.predict_proba(frame, as_multiclass=True)
        return probabilities[predictor.class_labels].to_numpy()

    return Fitted(predict=predict, classes=classes, details=details)


def _as_categories(frame: pd.DataFrame, categories: dict[str, pd.Index]) -> pd.DataFrame:
    """Text and boolean columns as pandas categories with the training set's levels."""
    frame = frame.copy()
    for name, levels in categories.items():
        frame[name] = pd.Categorical(frame[name].astype(object), categories=levels)
    return frame


def fit_lightgbm(job: Job, train: pd.DataFrame) -> Fitted:
    import lightgbm

    features, labels = train.drop(columns=[job.target]), train[job.target]
    categories = {
        name: pd.Index(sorted(features[name].dropna().astype(object).unique(), key=str))
        for name in features.columns
        if not pd.api.types.is_numeric_dtype(features[name])
        or pd.api.types.is_bool_dtype(features[name])
    }
    matrix = _as_categories(features, categories)
    details = {"categorical": sorted(categories)}
    if job.task == "regression":
        regressor = lightgbm.LGBMRegressor(random_state=job.seed, verbose=-1)
        regressor.fit(matrix, labels)
        return Fitted(
            predict=lambda frame: np.asarray(regressor.predict(_as_categories(frame, categories))),
            classes=None,
            details=details,
        )
    classifier = lightgbm.LGBMClassifier(random_state=job.seed, verbose=-1)
    classifier.fit(matrix, labels.astype(object))
    return Fitted(
        predict=lambda frame: np.asarray(
            classifier.predict_proba(_as_categories(frame, categories))
        ),
        classes=[str(label) for label in classifier.classes_],
        details=details,
    )


FITTERS: dict[str, Callable[[Job, pd.DataFrame], Fitted]] = {
    "mlmanager": fit_mlmanager,
    "flaml": fit_flaml,
    "autogluon": fit_autogluon,
    "lightgbm": fit_lightgbm,
}
LIBRARIES = {
    "mlmanager": ("flaml", "lightgbm", "xgboost-cpu", "catboost", "scikit-learn"),
    "flaml": ("flaml", "lightgbm", "xgboost-cpu", "catboost", "scikit-learn"),
    "autogluon": ("autogluon.tabular", "lightgbm", "xgboost-cpu", "catboost", "scikit-learn"),
    "lightgbm": ("lightgbm",),
}


# --- Measuring ----------------------------------------------------------------------------------


def single_row_latency(
    predict: Callable[[pd.DataFrame], np.ndarray],
    features: pd.DataFrame,
    *,
    rows: int,
    warm_up: int,
) -> list[float]:
    """Seconds per single-row prediction, for `rows` rows after `warm_up` untimed ones."""
    count = len(features)
    singles = [features.iloc[[index % count]] for index in range(warm_up + rows)]
    for frame in singles[:warm_up]:
        predict(frame)
    timings = []
    for frame in singles[warm_up:]:
        started = time.perf_counter()
        predict(frame)
        timings.append(time.perf_counter() - started)
    return timings


def _versions(system: str) -> dict[str, str]:
    found = {"python": platform.python_version(), "pandas": pd.__version__, "numpy": np.__version__}
    for name in LIBRARIES[system]:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def run(job: Job) -> dict[str, Any]:
    train = pd.read_parquet(job.train)
    test = pd.read_parquet(job.test)
    features = test.drop(columns=[job.target])

    started = time.perf_counter()
    fitted = FITTERS[job.system](job, train)
    fit_s = time.perf_counter() - started

    started = time.perf_counter()
    predictions = np.asarray(fitted.predict(features), dtype=np.float64)
    batch_s = time.perf_counter() - started
    if fitted.classes is None:
        frame = pd.DataFrame({"prediction": predictions.reshape(-1)})
    else:
        frame = pd.DataFrame(predictions, columns=fitted.classes)
    frame.to_parquet(job.out / "predictions.parquet", index=False)

    timings = single_row_latency(
        fitted.predict, features, rows=job.latency_rows, warm_up=job.warm_up
    )
    return {
        "status": "ok",
        "fit_s": fit_s,
        "predict_batch_s": batch_s,
        "latency_ms_median": float(np.median(timings)) * 1000,
        "latency_ms_p95": float(np.percentile(timings, 95)) * 1000,
        "classes": fitted.classes,
        "details": _jsonable(fitted.details),
    }


def parse_arguments(argv: list[str] | None = None) -> Job:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--system", choices=SYSTEMS, required=True)
    parser.add_argument("--train", type=Path, required=True, help="train split (Parquet)")
    parser.add_argument("--test", type=Path, required=True, help="test split (Parquet)")
    parser.add_argument("--target", required=True, help="the column to predict")
    parser.add_argument("--task", choices=TASKS, required=True)
    parser.add_argument("--metric", choices=sorted(AUTOGLUON_METRICS), required=True)
    parser.add_argument("--budget", type=float, required=True, help="time budget (s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="folder for the results")
    parser.add_argument("--latency-rows", type=int, default=200)
    parser.add_argument("--warm-up", type=int, default=20)
    arguments = parser.parse_args(argv)
    return Job(
        system=arguments.system,
        train=arguments.train,
        test=arguments.test,
        target=arguments.target,
        task=arguments.task,
        metric=arguments.metric,
        budget_s=arguments.budget,
        seed=arguments.seed,
        out=arguments.out,
        latency_rows=arguments.latency_rows,
        warm_up=arguments.warm_up,
    )


def main(argv: list[str] | None = None) -> int:
    job = parse_arguments(argv)
    job.out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"system": job.system, "pid": os.getpid()}
    try:
        result.update(run(job))
        code = 0
    except Exception as error:  # reported to the parent, which goes on with the next run
        result.update(status="failed", error=f"{type(error).__name__}: {error}")
        result["traceback"] = traceback.format_exc()
        code = 1
    result["versions"] = _versions(job.system)
    (job.out / "result.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
