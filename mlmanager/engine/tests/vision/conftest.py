"""Small image data sets and models trained on them once per session.

Runs are bounded by `max_epochs` (1-2), never by seconds: the budget is generous so that a slow
or shared machine only makes a test slower. Torch runs on one thread in these tests (the
engine's own choice depends on the machine's load, which would make runs differ).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
import torch

from mlmanager.engine.vision import VisionSpec, train_vision, warm_up
from mlmanager.engine.vision.testing import write_digits_dataset, write_shapes_dataset

KEY = b"vision-test-key"
GENEROUS_BUDGET_S = 600.0


@pytest.fixture(scope="session", autouse=True)
def _one_thread() -> Iterator[None]:
    warm_up()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with mock.patch("mlmanager.engine.vision.training.training_threads", return_value=1):
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def digits_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_digits_dataset(tmp_path_factory.mktemp("digits"), per_class=10)


@pytest.fixture(scope="session")
def shapes_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_shapes_dataset(tmp_path_factory.mktemp("shapes"), count=24, size=32)


@pytest.fixture(scope="session")
def digits_run(digits_path: Path, tmp_path_factory: pytest.TempPathFactory):
    progress: list = []
    outcome = train_vision(
        digits_path,
        VisionSpec("classification", level=1, time_budget_s=GENEROUS_BUDGET_S, max_epochs=2),
        workdir=tmp_path_factory.mktemp("digits-run"),
        artifact_key=KEY,
        on_progress=progress.append,
        should_cancel=lambda: False,
    )
    return outcome, progress


@pytest.fixture(scope="session")
def shapes_run(shapes_path: Path, tmp_path_factory: pytest.TempPathFactory):
    return train_vision(
        shapes_path,
        VisionSpec("segmentation", level=1, time_budget_s=GENEROUS_BUDGET_S, max_epochs=2),
        workdir=tmp_path_factory.mktemp("shapes-run"),
        artifact_key=KEY,
        on_progress=lambda progress: None,
        should_cancel=lambda: False,
    )
