"""Real models, trained once per test session with the engine, and installed per test as the
active version of a model in the test's team (artifacts copied under the test's media root,
signed with the test settings' key)."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlmanager.datasets.files import local_path
from mlmanager.engine.profiling import profile_parquet
from mlmanager.engine.training import OutputSpec, TrainingSpec, train
from mlmanager.machines import files
from mlmanager.machines.models import Machine, ModelVersion, machine_storage_dir
from mlmanager.machines.tests.conftest import make_dataset  # noqa: F401 - a fixture

INPUTS = ["plan", "monthly_fee", "tenure_months", "member", "signup"]


def customers(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    generator = np.random.default_rng(seed)
    tenure = generator.integers(1, 60, rows)
    fee = generator.normal(50, 15, rows).round(2)
    plan = generator.choice(["basic", "plus", "pro"], rows)
    member = generator.random(rows) < 0.5
    days = generator.integers(0, 1000, rows)
    signup = (pd.Timestamp("2022-01-01") + pd.to_timedelta(days, unit="D")).strftime("%Y-%m-%d")
    churned = np.where((tenure < 20) ^ (generator.random(rows) < 0.1), "yes", "no")
    return pd.DataFrame(
        {
            "customer_id": [f"C{index:05d}" for index in range(rows)],
            "plan": plan,
            "monthly_fee": fee,
            "tenure_months": tenure,
            "member": member,
            "signup": pd.to_datetime(signup),
            "spend": (fee * tenure + generator.normal(0, 20, rows)).round(2),
            "churned": churned,
        }
    )


@dataclasses.dataclass
class TrainedOutputs:
    """What a session training left: per output, the artifact and its record."""

    folder: Path
    inputs: list[dict[str, str]]
    outputs: list[dict[str, Any]]  # ModelVersion.outputs records, artifact relative to folder


def _train(folder: Path, outputs: list[tuple[str, str, str]]) -> TrainedOutputs:
    data = folder / "data.parquet"
    customers().to_parquet(data, index=False)
    types = {column["name"]: column["type"] for column in profile_parquet(data)["columns"]}
    inputs = [(name, types[name]) for name in INPUTS]
    spec = TrainingSpec(
        inputs=inputs,
        outputs=[OutputSpec(name, task, metric) for name, task, metric in outputs],
        time_budget_s=600,  # generous: the candidate cap ends the search, however slow the machine
        max_candidates=2,
    )
    outcome = train(data, spec, workdir=folder / "work", artifact_key=files.artifact_key())
    assert outcome.status == "succeeded", outcome
    records = [
        {
            "name": result.name,
            "task": result.task,
            "metric": result.metric,
            "metrics": {},
            "leaderboard": [],
            "feature_importance": [],
            "best_estimator": result.best_estimator,
            "artifact": str(result.artifact_path.relative_to(folder)),
            "artifact_signature": result.artifact_signature,
        }
        for result in outcome.outputs
    ]
    return TrainedOutputs(folder, [{"name": n, "type": t} for n, t in inputs], records)


@pytest.fixture(scope="session")
def trained_binary(tmp_path_factory: pytest.TempPathFactory) -> TrainedOutputs:
    return _train(tmp_path_factory.mktemp("binary"), [("churned", "binary", "roc_auc")])


@pytest.fixture(scope="session")
def trained_two_outputs(tmp_path_factory: pytest.TempPathFactory) -> TrainedOutputs:
    return _train(
        tmp_path_factory.mktemp("two"),
        [("churned", "binary", "roc_auc"), ("spend", "regression", "rmse")],
    )


def install_version(
    machine: Machine, trained: TrainedOutputs, *, number: int = 1, activate: bool = True
) -> ModelVersion:
    """Copy the trained artifacts under the machine's folder and record them as a version."""
    storage = f"{machine.storage_dir}/run-v{number}"
    outputs = []
    for record in trained.outputs:
        source = trained.folder / record["artifact"]
        relative = f"{storage}/{record['artifact']}"
        destination = local_path(relative)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, destination)
        shutil.copyfile(f"{source}.sig", f"{destination}.sig")
        outputs.append({**record, "artifact": relative})
    version = ModelVersion.objects.create(
        team_id=machine.team_id,
        machine=machine,
        number=number,
        outcome=ModelVersion.Outcome.SUCCEEDED,
        storage_dir=storage,
        inputs=trained.inputs,
        outputs=outputs,
    )
    if activate:
        Machine.objects.filter(pk=machine.pk).update(active_version=version)
        machine.active_version = version
    return version


@pytest.fixture
def make_model(make_dataset: Callable[..., Any]) -> Callable[..., Machine]:  # noqa: F811
    def make(user: Any, trained: TrainedOutputs, *, name: str = "Churn model") -> Machine:
        dataset = make_dataset(user, customers(), name="Customers")
        machine = Machine.objects.create(
            team=user.current_team,
            created_by=user,
            name=name,
            dataset=dataset,
            inputs=[item["name"] for item in trained.inputs],
            outputs=[
                {"name": r["name"], "task": r["task"], "metric": r["metric"]}
                for r in trained.outputs
            ],
            time_budget_s=60,
            storage_dir=machine_storage_dir(user.current_team_id),
        )
        install_version(machine, trained)
        return machine

    return make


@pytest.fixture
def binary_model(owner: Any, make_model: Callable[..., Machine], trained_binary: Any) -> Machine:
    return make_model(owner, trained_binary)


# --- image models (issue 16) ---------------------------------------------------------------


@dataclasses.dataclass
class TrainedVision:
    """What a session's image training left: the model's folder and its version record."""

    folder: Path  # the engine's artifact folder
    output: dict[str, Any]  # ModelVersion.outputs[0], artifact_dir to be set on install


def _train_vision(folder: Path, task: str) -> TrainedVision:
    import torch

    from mlmanager.engine.vision import VisionSpec, train_vision
    from mlmanager.engine.vision.testing import write_digits_dataset, write_shapes_dataset

    torch.set_num_threads(2)
    if task == "classification":
        data = write_digits_dataset(folder / "data.parquet", per_class=8)
    else:
        data = write_shapes_dataset(folder / "data.parquet", count=24, size=24)
    outcome = train_vision(
        data,
        VisionSpec(task=task, level=1, time_budget_s=600, seed=0, max_epochs=2),
        workdir=folder / "work",
        artifact_key=files.artifact_key(),
        on_progress=lambda progress: None,
        should_cancel=lambda: False,
    )
    assert outcome.status == "completed", outcome
    name, metric = ("label", "accuracy") if task == "classification" else ("mask", "dice")
    return TrainedVision(
        folder=Path(outcome.artifact_dir),
        output={
            "name": name,
            "task": task,
            "metric": metric,
            "metrics": outcome.metrics,
            "members": outcome.members,
            "classes": list(outcome.classes),
            "image_size": outcome.image_size,
            "signatures": dict(outcome.signatures),
        },
    )


@pytest.fixture(scope="session")
def trained_digits(tmp_path_factory: pytest.TempPathFactory) -> TrainedVision:
    return _train_vision(tmp_path_factory.mktemp("digits"), "classification")


@pytest.fixture(scope="session")
def trained_shapes(tmp_path_factory: pytest.TempPathFactory) -> TrainedVision:
    return _train_vision(tmp_path_factory.mktemp("shapes"), "segmentation")


def install_vision_version(
    machine: Machine, trained: TrainedVision, *, number: int = 1
) -> ModelVersion:
    """Copy the trained image model under the machine's folder, record it as the active
    version (as machines' versions service records a finished run)."""
    storage = f"{machine.storage_dir}/run-v{number}"
    artifact_dir = f"{storage}/vision"
    shutil.copytree(trained.folder, local_path(artifact_dir))
    version = ModelVersion.objects.create(
        team_id=machine.team_id,
        machine=machine,
        number=number,
        outcome=ModelVersion.Outcome.SUCCEEDED,
        storage_dir=storage,
        inputs=[{"name": "image", "type": "image"}],
        outputs=[{**trained.output, "artifact_dir": artifact_dir}],
    )
    Machine.objects.filter(pk=machine.pk).update(active_version=version)
    machine.active_version = version
    return version


@pytest.fixture
def make_image_model() -> Callable[..., Machine]:
    def make(user: Any, trained: TrainedVision, *, name: str = "Digits model") -> Machine:
        output = trained.output
        machine = Machine.objects.create(
            team=user.current_team,
            created_by=user,
            name=name,
            dataset=None,
            inputs=["image"],
            outputs=[{"name": output["name"], "task": output["task"], "metric": output["metric"]}],
            time_budget_s=60,
            storage_dir=machine_storage_dir(user.current_team_id),
        )
        install_vision_version(machine, trained)
        return machine

    return make


@pytest.fixture
def digits_model(
    owner: Any, make_image_model: Callable[..., Machine], trained_digits: Any
) -> Machine:
    return make_image_model(owner, trained_digits)


@pytest.fixture
def shapes_model(
    owner: Any, make_image_model: Callable[..., Machine], trained_shapes: Any
) -> Machine:
    return make_image_model(owner, trained_shapes, name="Shapes model")
