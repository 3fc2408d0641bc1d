"""ONNX export: onnxruntime answers what MLManager answers, to 1e-5, on 1 000 held-out rows.

Models are built the way the search builds them (the preprocessor of `build_preprocessor`,
FLAML's learner of each family the search uses, `TrainedModel`), so each family is tested on
purpose rather than whichever the search happens to pick; one test goes through `train()`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from flaml.automl.task.factory import task_factory

from mlmanager.engine.export.onnx import (
    OnnxUnsupported,
    Problem,
    export_problem,
    model_to_onnx,
    onnx_feed,
)
from mlmanager.engine.tests.training.conftest import KEY, spec, write_parquet
from mlmanager.engine.training import TrainedModel, load_model, train
from mlmanager.engine.training.ensemble import EnsembleModel
from mlmanager.engine.training.model import single_threaded
from mlmanager.engine.training.preprocessing import build_preprocessor

TOLERANCE = 1e-5
HELD_OUT_ROWS = 1_000
# Smaller forests than the search's 100 trees: skl2onnx converts deep trees slowly (~0.4 s a
# tree), and 30 trees test the same code.
SMALL = {"rf": {"n_estimators": 30}, "extra_tree": {"n_estimators": 30}}

INPUTS = [
    ("amount", "numeric"),
    ("count", "integer"),
    ("colour", "categorical"),  # a few levels: one-hot
    ("city", "categorical"),  # many levels: frequency codes
    ("member", "boolean"),  # yes/no
    ("sex", "boolean"),  # two values of its own
]


def rows(count: int, *, seed: int, task: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Numbers, categories and yes/no columns with missing values (and an infinity, and
    levels never seen in training when the seed differs)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "amount": rng.normal(size=count) * 10,
            "count": rng.integers(0, 100, count).astype(float),
            "colour": rng.choice(["red", "green", "blue", "yellow"], count).astype(object),
            "city": np.array([f"city {i}" for i in rng.integers(0, 150 + seed, count)], object),
            "member": rng.choice(["yes", "no", "Yes", "NO"], count).astype(object),
            "sex": rng.choice(["female", "male"], count).astype(object),
        }
    )
    frame.loc[rng.random(count) < 0.1, "amount"] = np.nan
    frame.loc[rng.random(count) < 0.05, "count"] = np.nan
    frame.loc[rng.random(count) < 0.1, "colour"] = None
    frame.loc[rng.random(count) < 0.05, "city"] = None
    frame.loc[rng.random(count) < 0.1, "member"] = None
    frame.loc[rng.random(count) < 0.05, "sex"] = None
    frame.loc[3, "amount"] = np.inf
    score = (
        np.nan_to_num(frame["amount"].to_numpy(dtype=float), posinf=0.0) * 0.2
        + (frame["colour"] == "red") * 2.0
        + (frame["member"].str.lower() == "yes") * 1.0
        - (frame["sex"] == "male") * 0.5
        - np.nan_to_num(frame["count"].to_numpy(dtype=float)) / 50
        + rng.normal(size=count)
    ).to_numpy()
    if task == "regression":
        return frame, score
    if task == "binary":
        return frame, (score > 0).astype(int)
    return frame, np.digitize(score, [-1.0, 1.0]).astype(int)


def fitted(
    task: str, estimator: str, frame: pd.DataFrame, target: np.ndarray, **config: Any
) -> tuple[Any, Any]:
    preprocessor = build_preprocessor(INPUTS, frame)
    features = preprocessor.fit_transform(frame)
    learner = task_factory(task).estimator_class_from_str(estimator)
    model = learner(task=task, n_jobs=1, **(SMALL.get(estimator, {}) | config))
    model.fit(features, target)
    return preprocessor, single_threaded(model)


CLASSES = {"binary": ["no", "yes"], "multiclass": [10, 20, 30], "regression": None}


def trained(
    task: str, estimator: str, *, seed: int = 0, output: str = "target", **config: Any
) -> TrainedModel:
    frame, target = rows(3_000, seed=seed, task=task)
    preprocessor, model = fitted(task, estimator, frame, target, **config)
    return TrainedModel(
        output=output,
        task=task,
        metric="rmse" if task == "regression" else "log_loss",
        inputs=INPUTS,
        preprocessor=preprocessor,
        estimator=model,
        estimator_name=estimator,
        classes=CLASSES[task],
    )


def onnx_answers(
    models: list[TrainedModel], frame: pd.DataFrame, *, threshold: float | None = None
) -> dict[str, np.ndarray]:
    graph = model_to_onnx(models, threshold=threshold)
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(None, onnx_feed(frame, INPUTS)), strict=True))


def held_out(task: str) -> pd.DataFrame:
    frame, _ = rows(HELD_OUT_ROWS, seed=7, task=task)
    return frame


def assert_same_answers(model: TrainedModel, answers: dict[str, np.ndarray], frame) -> None:
    output = model.output
    if model.task == "regression":
        assert sorted(answers) == [f"{output}:value"]
        np.testing.assert_allclose(
            answers[f"{output}:value"], model.predict(frame), rtol=0, atol=TOLERANCE
        )
        return
    assert sorted(answers) == [f"{output}:label", f"{output}:probabilities"]
    probabilities = answers[f"{output}:probabilities"]
    assert probabilities.shape == (len(frame), len(model.classes or []))
    np.testing.assert_allclose(probabilities, model.predict_proba(frame), rtol=0, atol=TOLERANCE)
    assert answers[f"{output}:label"].tolist() == model.predict(frame).tolist()


FAMILIES = [
    ("binary", "lgbm"),
    ("binary", "xgboost"),
    ("binary", "rf"),
    ("binary", "extra_tree"),
    ("binary", "lrl1"),
    ("multiclass", "lgbm"),
    ("multiclass", "xgboost"),
    ("multiclass", "rf"),
    ("multiclass", "extra_tree"),
    ("multiclass", "lrl1"),
    ("regression", "lgbm"),
    ("regression", "xgboost"),
    ("regression", "rf"),
    ("regression", "extra_tree"),
    ("regression", "enet"),
]


@pytest.mark.parametrize(("task", "estimator"), FAMILIES)
def test_onnxruntime_matches_mlmanager_for_each_family(task: str, estimator: str):
    model = trained(task, estimator)
    frame = held_out(task)
    assert len(frame) == HELD_OUT_ROWS
    assert_same_answers(model, onnx_answers([model], frame), frame)


@pytest.mark.parametrize(
    ("task", "members"),
    [
        ("binary", [("lgbm", 0.5), ("rf", 0.3), ("lrl1", 0.2)]),
        ("multiclass", [("xgboost", 0.6), ("extra_tree", 0.4)]),
        ("regression", [("xgboost", 0.7), ("enet", 0.3)]),
    ],
)
def test_an_ensemble_matches(task: str, members: list[tuple[str, float]]):
    frame, target = rows(3_000, seed=0, task=task)
    preprocessor = build_preprocessor(INPUTS, frame)
    features = preprocessor.fit_transform(frame)
    fitted_members = []
    for name, weight in members:
        learner = task_factory(task).estimator_class_from_str(name)
        learner = learner(task=task, n_jobs=1, **SMALL.get(name, {}))
        learner.fit(features, target)
        fitted_members.append((name, single_threaded(learner), weight))
    class_count = 0 if task == "regression" else len(CLASSES[task] or [])
    model = TrainedModel(
        output="target",
        task=task,
        metric="x",
        inputs=INPUTS,
        preprocessor=preprocessor,
        estimator=EnsembleModel(fitted_members, task=task, class_count=class_count),
        estimator_name="ensemble",
        classes=CLASSES[task],
    )
    held = held_out(task)
    assert_same_answers(model, onnx_answers([model], held), held)


def sparse_rows(count: int, *, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Mostly one-hot columns: the preprocessor's output is a sparse matrix, which XGBoost
    reads differently (left-out entries are missing values)."""
    rng = np.random.default_rng(seed)
    levels = {f"c{j}": rng.integers(0, 25, count) for j in range(4)}
    frame = pd.DataFrame(
        {"amount": rng.normal(size=count)}
        | {name: np.array([f"v{i}" for i in codes], object) for name, codes in levels.items()}
    )
    frame.loc[rng.random(count) < 0.1, "c0"] = None
    target = ((levels["c1"] < 12) ^ (frame["amount"].to_numpy() > 0)).astype(int)
    return frame, target


@pytest.mark.parametrize("estimator", ["xgboost", "lgbm", "rf"])
def test_sparse_features_and_the_decision_threshold(estimator: str):
    inputs = [("amount", "numeric")] + [(f"c{j}", "categorical") for j in range(4)]
    frame, target = sparse_rows(3_000, seed=0)
    preprocessor = build_preprocessor(inputs, frame)
    features = preprocessor.fit_transform(frame)
    assert preprocessor.steps[0][1].sparse_output_
    learner = task_factory("binary").estimator_class_from_str(estimator)
    learner = learner(task="binary", n_jobs=1, **SMALL.get(estimator, {}))
    learner.fit(features, target)
    model = TrainedModel(
        output="flag",
        task="binary",
        metric="log_loss",
        inputs=inputs,
        preprocessor=preprocessor,
        estimator=single_threaded(learner),
        estimator_name=estimator,
        classes=[False, True],
    )
    held, _ = sparse_rows(HELD_OUT_ROWS, seed=3)
    graph = model_to_onnx([model], threshold=0.345)  # between a 30-tree forest's votes
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    labels, probabilities = session.run(
        ["flag:label", "flag:probabilities"], onnx_feed(held, inputs)
    )
    expected = model.predict_proba(held)
    np.testing.assert_allclose(probabilities, expected, rtol=0, atol=TOLERANCE)
    assert labels.tolist() == [str(label) for label in model.labels(expected, 0.345)]


def test_every_output_of_a_version_is_answered_by_one_graph():
    price = trained("regression", "lgbm", output="price")
    kind = trained("multiclass", "rf", output="kind")
    frame = held_out("regression")
    answers = onnx_answers([price, kind], frame)
    assert sorted(answers) == ["kind:label", "kind:probabilities", "price:value"]
    assert_same_answers(price, {"price:value": answers["price:value"]}, frame)
    assert_same_answers(
        kind, {key: value for key, value in answers.items() if key.startswith("kind:")}, frame
    )
    graph = model_to_onnx([price, kind])
    assert [item.name for item in graph.graph.input] == [name for name, _ in INPUTS]
    assert {entry.key: entry.value for entry in graph.metadata_props} == {
        "classes:kind": "[10, 20, 30]"
    }


def test_a_model_trained_by_the_engine_converts(tmp_path: Path):
    frame, target = rows(1_500, seed=0, task="binary")
    frame["label"] = np.array(["no", "yes"], dtype=object)[target]
    parquet = write_parquet(tmp_path / "data.parquet", frame)
    outcome = train(
        parquet,
        spec(INPUTS, ("label", "binary", "log_loss"), max_candidates=4),
        workdir=tmp_path / "work",
        artifact_key=KEY,
    )
    result = outcome.outputs[0]
    model = load_model(result.artifact_path, key=KEY, signature=result.artifact_signature)
    held = held_out("binary")
    assert_same_answers(model, onnx_answers([model], held), held)


# --- what cannot be exported ------------------------------------------------------------------


def test_text_and_date_inputs_are_refused_with_the_reason():
    frame, target = rows(500, seed=0, task="binary")
    frame["note"] = np.where(target == 1, "works well", "broke")
    for extra, reason in [
        (("note", "text"), "Inputs of type text cannot be exported to ONNX yet."),
        (("amount", "datetime"), "Inputs of type date cannot be exported to ONNX yet."),
    ]:
        inputs = [*INPUTS[1:], extra]
        model = TrainedModel(
            output="target",
            task="binary",
            metric="log_loss",
            inputs=inputs,
            preprocessor=None,
            estimator=None,
            estimator_name="lgbm",
            classes=["no", "yes"],
        )
        with pytest.raises(OnnxUnsupported) as raised:
            model_to_onnx([model])
        assert raised.value.reason == reason


def test_catboost_is_refused_with_the_reason():
    model = trained("binary", "catboost", n_estimators=5, allow_writing_files=False)
    with pytest.raises(OnnxUnsupported) as raised:
        model_to_onnx([model])
    assert raised.value.reason == "CatBoost models cannot be exported to ONNX yet."
    assert raised.value.problem == Problem("catboost")


def test_export_problem_reads_only_what_a_version_recorded():
    numbers = [("x", "numeric"), ("colour", "categorical"), ("flag", "boolean")]
    assert (
        export_problem(inputs=numbers, outputs=[{"task": "binary", "best_estimator": "rf"}]) is None
    )
    assert export_problem(
        inputs=[*numbers, ("when", "datetime")],
        outputs=[{"task": "regression", "best_estimator": "lgbm"}],
    ) == Problem("input_type", "date")
    assert export_problem(
        inputs=[("doc", "json")], outputs=[{"task": "regression", "best_estimator": "lgbm"}]
    ) == Problem("input_type", "JSON")
    assert export_problem(
        inputs=[("image", "image")], outputs=[{"task": "image_classification"}]
    ) == Problem("image_model")
    ensemble = {
        "task": "binary",
        "best_estimator": "ensemble",
        "leaderboard": [
            {
                "estimator": "ensemble",
                "config": {"members": [{"estimator": "lgbm"}, {"estimator": "catboost"}]},
            }
        ],
    }
    assert export_problem(inputs=numbers, outputs=[ensemble]) == Problem("catboost")
    assert export_problem(inputs=numbers, outputs=[ensemble]).reason == (  # type: ignore[union-attr]
        "CatBoost models cannot be exported to ONNX yet."
    )
    ensemble["leaderboard"][0]["config"]["members"][1]["estimator"] = "xgboost"  # type: ignore[index]
    assert export_problem(inputs=numbers, outputs=[ensemble]) is None
