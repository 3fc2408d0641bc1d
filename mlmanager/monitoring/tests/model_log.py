"""A model with a real training profile and a prediction log written on purpose, for the
series, drift and model monitoring tests: no training (monitoring reads the log and the
profile, never the artifact)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlmanager.datasets.files import local_path
from mlmanager.datasets.models import Dataset, dataset_storage_dir
from mlmanager.engine.profiling import profile_parquet
from mlmanager.machines.models import Machine, ModelVersion, machine_storage_dir
from mlmanager.predictions.models import Prediction

TRAINING_ROWS = 1000


def training_frame(rows: int = TRAINING_ROWS) -> pd.DataFrame:
    """A mill's history: a temperature (numeric), a shift plan (categorical), whether the
    motor failed (the class) and the energy used (the amount)."""
    generator = np.random.default_rng(0)
    temperature = generator.normal(50.0, 10.0, rows).round(3)
    plan = generator.choice(["day", "night", "weekend"], rows, p=[0.5, 0.3, 0.2])
    return pd.DataFrame(
        {
            "temperature": temperature,
            "plan": plan,
            "failed": np.where(temperature > 60, "yes", "no"),
            "energy": (temperature * 2.0 + 10.0).round(3),
        }
    )


def dataset_of(team: Any, frame: pd.DataFrame, *, name: str = "Mill history") -> Dataset:
    dataset = Dataset(
        team=team,
        name=name,
        original_filename=f"{name}.parquet",
        storage_dir=dataset_storage_dir(team.pk),
        source_name="source.parquet",
        status=Dataset.Status.READY,
    )
    path: Path = local_path(dataset.parquet_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    dataset.profile = profile_parquet(path)
    dataset.row_count = dataset.profile["row_count"]
    dataset.column_count = dataset.profile["column_count"]
    dataset.save()
    return dataset


def model_of(team: Any, *, name: str = "Failure model", holdout: bool = True) -> Machine:
    """A model of `temperature` and `plan` predicting `failed` (binary) and `energy`
    (regression), with an active version whose holdout metrics hold a confusion matrix and
    predicted values (what training recorded)."""
    dataset = dataset_of(team, training_frame())
    outputs = [
        {"name": "failed", "task": "binary", "metric": "roc_auc"},
        {"name": "energy", "task": "regression", "metric": "rmse"},
    ]
    machine = Machine.objects.create(
        team=team,
        name=name,
        dataset=dataset,
        inputs=["temperature", "plan"],
        outputs=outputs,
        time_budget_s=60,
        storage_dir=machine_storage_dir(team.pk),
    )
    metrics = (
        [
            {
                "accuracy": 0.9,
                "confusion_matrix": {"labels": ["no", "yes"], "matrix": [[70, 10], [5, 15]]},
            },
            {
                "rmse": 1.0,
                "predicted_vs_actual": {
                    "actual": [100.0, 110.0, 120.0, 130.0],
                    "predicted": [101.0, 109.0, 121.0, 129.0],
                },
            },
        ]
        if holdout
        else [{}, {}]
    )
    version = ModelVersion.objects.create(
        team=team,
        machine=machine,
        number=1,
        outcome=ModelVersion.Outcome.SUCCEEDED,
        storage_dir=f"{machine.storage_dir}/run-1",
        inputs=[
            {"name": "temperature", "type": "numeric"},
            {"name": "plan", "type": "categorical"},
        ],
        outputs=[
            {**output, "metrics": metric} for output, metric in zip(outputs, metrics, strict=True)
        ],
    )
    Machine.objects.filter(pk=machine.pk).update(active_version=version)
    machine.refresh_from_db()
    return machine


def log_predictions(
    machine: Machine,
    rows: list[dict[str, Any]],
    *,
    start: datetime,
    step: timedelta,
) -> list[Prediction]:
    """Write one prediction per row, `step` apart from `start`. A row has `temperature`,
    `plan`, and optionally `failed` / `energy` (the answers), `p_yes`, `latency_ms` and
    `truth` (feedback per output)."""
    predictions = []
    for row in rows:
        failed = row.get("failed", "yes" if row["temperature"] > 60 else "no")
        p_yes = row.get("p_yes", 0.9 if failed == "yes" else 0.1)
        predictions.append(
            Prediction(
                team_id=machine.team_id,
                machine=machine,
                version=machine.active_version,
                version_number=1,
                source=Prediction.Source.API,
                inputs={"temperature": row["temperature"], "plan": row["plan"]},
                outputs={
                    "failed": {"value": failed, "probabilities": {"no": 1 - p_yes, "yes": p_yes}},
                    "energy": {"value": row.get("energy", row["temperature"] * 2.0 + 10.0)},
                },
                latency_ms=row.get("latency_ms", 5.0),
                feedback=row.get("truth"),
            )
        )
    Prediction.objects.bulk_create(predictions)
    # created_at is set on insert: move each row to its moment.
    for index, prediction in enumerate(predictions):
        Prediction.objects.filter(pk=prediction.pk).update(created_at=start + index * step)
    return predictions


def training_rows(count: int, *, shift: float = 0.0, offset: int = 0) -> list[dict[str, Any]]:
    """`count` rows of the training data from row `offset`, the temperature moved by
    `shift` (a shifted log drifts; an unshifted one is the training distribution)."""
    frame = training_frame().iloc[offset : offset + count]
    return [
        {"temperature": float(temperature) + shift, "plan": plan}
        for temperature, plan in zip(frame["temperature"], frame["plan"], strict=True)
    ]
