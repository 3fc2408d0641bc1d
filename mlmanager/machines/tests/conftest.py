"""Datasets made in memory (a Parquet file and its real profile) and helpers for model tests.

Trainings use the real engine with a small candidate cap (MLMANAGER_TRAINING_MAX_CANDIDATES),
so a run takes a few seconds whatever its budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlmanager.datasets.files import local_path
from mlmanager.datasets.models import Dataset, dataset_storage_dir
from mlmanager.engine.artifacts import write_artifact
from mlmanager.engine.profiling import profile_parquet
from mlmanager.engine.training import (
    OutputResult,
    Progress,
    TrainingError,
    TrainingOutcome,
    TrainingSpec,
)
from mlmanager.machines.models import Machine, ModelVersion

MAX_CANDIDATES = 2
BUDGET_S = 600  # generous: the candidate cap ends the search, however slow the machine
# What a loaded machine may add to a wall-clock bound the product promises (a cancel's 5 s).
LOAD_MARGIN_S = 15.0


@pytest.fixture(autouse=True)
def _few_candidates(settings: Any) -> None:
    settings.MLMANAGER_TRAINING_MAX_CANDIDATES = MAX_CANDIDATES


def churn_frame(rows: int = 200, seed: int = 0) -> pd.DataFrame:
    """A learnable binary target, a regression target, an identifier and a mostly empty column."""
    generator = np.random.default_rng(seed)
    tenure = generator.integers(1, 60, rows)
    fee = generator.normal(50, 15, rows).round(2)
    plan = generator.choice(["basic", "plus", "pro"], rows)
    churned = (tenure < 20) ^ (generator.random(rows) < 0.1)
    notes = [None] * rows
    notes[0] = "called once"
    return pd.DataFrame(
        {
            "customer_id": [f"C{index:05d}" for index in range(rows)],
            "plan": plan,
            "monthly_fee": fee,
            "tenure_months": tenure,
            "notes": notes,
            "spend": (fee * tenure + generator.normal(0, 20, rows)).round(2),
            "churned": churned,
        }
    )


@pytest.fixture
def make_dataset() -> Callable[..., Dataset]:
    def make(user: Any, frame: pd.DataFrame | None = None, *, name: str = "Churn") -> Dataset:
        frame = churn_frame() if frame is None else frame
        dataset = Dataset(
            team=user.current_team,
            created_by=user,
            name=name,
            original_filename=f"{name}.parquet",
            storage_dir=dataset_storage_dir(user.current_team_id),
            source_name="source.parquet",
            status=Dataset.Status.READY,
        )
        path = local_path(dataset.parquet_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(path, index=False)
        dataset.profile = profile_parquet(path)
        dataset.row_count = dataset.profile["row_count"]
        dataset.column_count = dataset.profile["column_count"]
        dataset.save()
        return dataset

    return make


def _plot(task: str) -> dict[str, Any]:
    if task == "regression":
        return {"predicted_vs_actual": {"actual": [1.0, 2.0, 3.0], "predicted": [1.5, 2.0, 2.5]}}
    return {"confusion_matrix": {"labels": [False, True], "matrix": [[5, 1], [2, 4]]}}


class FakeEngine:
    """Stands in for engine.training.train where a test is about the platform, not the search:
    reports progress once, runs `during` (a cancel, a deletion), then raises `error`, waits for
    should_cancel when `wait_for_stop`, or writes one signed artifact per output."""

    def __init__(self) -> None:
        self.during: Callable[[], None] | None = None
        self.error: TrainingError | None = None
        self.wait_for_stop = False
        self.outputs_when_cancelled = True
        self.specs: list[TrainingSpec] = []

    def train(
        self,
        parquet_path: Path,
        spec: TrainingSpec,
        *,
        workdir: Path,
        artifact_key: bytes,
        on_progress: Callable[[Progress], None],
        should_cancel: Callable[[], bool],
    ) -> TrainingOutcome:
        self.specs.append(spec)
        on_progress(
            Progress(
                elapsed_s=spec.time_budget_s / 4,
                budget_s=spec.time_budget_s,
                candidates=1,
                best_score=0.75,
                best_estimator="lgbm",
                message="Trying models",
            )
        )
        if self.during is not None:
            self.during()
        if self.error is not None:
            raise self.error
        stopped = False
        if self.wait_for_stop:
            deadline = time.monotonic() + 10
            while not stopped and time.monotonic() < deadline:
                stopped = should_cancel()
                time.sleep(0.02)
        outputs = []
        if not stopped or self.outputs_when_cancelled:
            for index, output in enumerate(spec.outputs):
                path = workdir / f"output-{index + 1}" / "model.joblib"
                outputs.append(
                    OutputResult(
                        name=output.name,
                        task=output.task,
                        metric=output.metric,
                        artifact_path=path,
                        artifact_signature=write_artifact(
                            {"fake": output.name}, path, key=artifact_key
                        ),
                        metrics={
                            output.metric: 0.8,
                            "accuracy": np.float64(0.9),
                            "log_loss": float("nan"),
                            **_plot(output.task),
                            "holdout_rows": 12,
                        },
                        leaderboard=[
                            {
                                "estimator": "lgbm",
                                "config": {"n_estimators": 4},
                                "score": 0.8,
                                "fit_time_s": 0.1,
                            }
                        ],
                        feature_importance=[
                            {"feature": name, "importance": 0.1 * (i + 1), "std": 0.01}
                            for i, (name, _type) in enumerate(spec.inputs)
                        ],
                        best_estimator="lgbm",
                    )
                )
        return TrainingOutcome(
            status="cancelled" if stopped else "succeeded",
            outputs=outputs,
            candidates=3,
            elapsed_s=1.0,
            reproducibility={"seed": spec.seed, "budget_s": spec.time_budget_s},
        )


@pytest.fixture
def fake_engine(monkeypatch: pytest.MonkeyPatch) -> FakeEngine:
    engine = FakeEngine()
    monkeypatch.setattr("mlmanager.machines.services.training.train", engine.train)
    return engine


def make_version(machine: Machine, *, number: int = 1, activate: bool = True) -> ModelVersion:
    """A recorded version without training (for pages, isolation and list tests)."""
    version = ModelVersion.objects.create(
        team_id=machine.team_id,
        machine=machine,
        number=number,
        outcome=ModelVersion.Outcome.SUCCEEDED,
        storage_dir=f"{machine.storage_dir}/run-v{number}",
        inputs=[{"name": name, "type": "numeric"} for name in machine.inputs],
        outputs=[
            {
                **output,
                "metrics": {output["metric"]: 0.5 + number / 10},
                "leaderboard": [],
                "feature_importance": [],
                "best_estimator": "rf",
                "artifact": "",
                "artifact_signature": "",
            }
            for output in machine.outputs
        ],
    )
    if activate:
        Machine.objects.filter(pk=machine.pk).update(active_version=version)
        machine.active_version = version
    return version


# --- image datasets (issue 16): the stored layout of the contract, written by the engine's
# test writers, with the profile the datasets app records ------------------------------------

DIGITS_PER_CLASS = 12
SHAPES_COUNT = 40


def image_profile(parquet: Path) -> dict[str, Any]:
    """An image dataset's profile (contract §1) for a `data.parquet` in the stored layout."""
    import pyarrow.parquet as pq

    table = pq.read_table(parquet, columns=["label", "mask", "width", "height", "channels"])
    rows = table.to_pylist()
    segmentation = any(row["mask"] is not None for row in rows)
    classes: dict[str, int] = {}
    for row in rows:
        if row["label"] is not None:
            classes[row["label"]] = classes.get(row["label"], 0) + 1
    images: dict[str, Any] = {
        "count": len(rows),
        "task": "segmentation" if segmentation else "classification",
        "layout": "masks" if segmentation else "folders",
        "classes": {"circle": len(rows), "square": len(rows)} if segmentation else classes,
        "skipped": [],
        "sizes": {
            side: {
                "min": min(row[side] for row in rows),
                "max": max(row[side] for row in rows),
                "median": sorted(row[side] for row in rows)[len(rows) // 2],
            }
            for side in ("width", "height")
        },
        "channels": {"1": len(rows)},
        "confirmed": True,
    }
    if segmentation:
        images["mask_classes"] = ["background", "circle", "square"]
    target = (
        {"name": "mask", "type": "mask"}
        if segmentation
        else {"name": "label", "type": "categorical"}
    )
    return {
        "kind": "images",
        "row_count": len(rows),
        "column_count": 2,
        "columns": [{"name": "image", "type": "image"}, target],
        "images": images,
    }


@pytest.fixture
def make_image_dataset() -> Callable[..., Dataset]:
    """`make(user, task="classification" | "segmentation")`: a ready image dataset of the
    user's team — scikit-learn's digits (a few per class) or generated shapes with masks."""
    from mlmanager.engine.vision.testing import write_digits_dataset, write_shapes_dataset

    def make(user: Any, task: str = "classification", *, name: str = "") -> Dataset:
        name = name or ("Digits" if task == "classification" else "Shapes")
        dataset = Dataset(
            team=user.current_team,
            created_by=user,
            name=name,
            kind="images",
            original_filename=f"{name}.zip",
            storage_dir=dataset_storage_dir(user.current_team_id),
            source_name="source.zip",
            status=Dataset.Status.READY,
        )
        path = local_path(dataset.parquet_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if task == "classification":
            write_digits_dataset(path, per_class=DIGITS_PER_CLASS)
        else:
            write_shapes_dataset(path, count=SHAPES_COUNT, size=32)
        dataset.profile = image_profile(path)
        dataset.row_count = dataset.profile["row_count"]
        dataset.column_count = dataset.profile["column_count"]
        dataset.save()
        return dataset

    return make
