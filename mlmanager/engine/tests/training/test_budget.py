"""The budget is a wall, cancelling is quick, and the search process never outlives train().

These tests are about wall-clock bounds, so they keep short budgets; each bound is asserted
with LOAD_MARGIN_S on top, so that a shared, loaded machine makes them slower, not red.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlmanager.engine.tests.training.conftest import (
    CLASSIFICATION_INPUTS,
    GENEROUS_BUDGET_S,
    KEY,
    LOAD_MARGIN_S,
    classification_frame,
    spec,
    write_parquet,
)
from mlmanager.engine.training import Progress, load_model, train


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("budget")
    return write_parquet(folder / "data.parquet", classification_frame(400))


def test_a_5_second_budget_ends_within_5_percent_plus_2_seconds(data: Path, tmp_path: Path):
    progress: list[Progress] = []
    started = time.monotonic()
    outcome = train(
        data,
        spec(CLASSIFICATION_INPUTS, ("label", "binary", "roc_auc"), budget=5),
        workdir=tmp_path / "work",
        artifact_key=KEY,
        on_progress=progress.append,
    )
    wall = time.monotonic() - started
    print(f"5 s budget: wall {wall:.2f} s, {outcome.candidates} candidates, {outcome.status}")
    assert wall <= 5 * 1.05 + 2 + LOAD_MARGIN_S
    assert outcome.elapsed_s <= wall
    assert outcome.status in {"succeeded", "timed_out"}
    assert (outcome.status == "succeeded") == bool(outcome.outputs)
    # Progress came regularly (every quarter second on an idle machine).
    times = [0.0] + [item.elapsed_s for item in progress] + [outcome.elapsed_s]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert len(progress) > 5 and max(gaps[1:-1]) < LOAD_MARGIN_S
    assert multiprocessing.active_children() == []


def test_cancel_returns_the_best_model_so_far_within_5_seconds(data: Path, tmp_path: Path):
    workdir = tmp_path / "work"
    cancelled_at: list[float] = []

    def on_progress(progress: Progress) -> None:
        # Cancel once a checkpoint exists, as a user would after seeing a first score.
        if not cancelled_at and list(workdir.glob("output-1/model-*.joblib")):
            cancelled_at.append(time.monotonic())

    # The first chunk, which writes the first checkpoint, lasts a tenth of the budget (plus a
    # trial and a refit on a slow machine): 120 s leaves room for it under load.
    outcome = train(
        data,
        spec(CLASSIFICATION_INPUTS, ("label", "binary", "roc_auc"), budget=120),
        workdir=workdir,
        artifact_key=KEY,
        on_progress=on_progress,
        should_cancel=lambda: bool(cancelled_at),
    )
    latency = time.monotonic() - cancelled_at[0]
    print(f"cancel latency {latency:.2f} s")
    assert latency < 5 + LOAD_MARGIN_S
    assert outcome.status == "cancelled"
    [result] = outcome.outputs
    assert result.metrics["roc_auc"] > 0.7
    assert result.feature_importance
    model = load_model(result.artifact_path, key=KEY, signature=result.artifact_signature)
    assert model.predict(classification_frame(5)).shape == (5,)
    assert multiprocessing.active_children() == []


def test_cancel_before_any_model_returns_no_outputs(data: Path, tmp_path: Path):
    started = time.monotonic()
    outcome = train(
        data,
        spec(CLASSIFICATION_INPUTS, ("label", "binary", "roc_auc")),
        workdir=tmp_path / "work",
        artifact_key=KEY,
        should_cancel=lambda: True,
    )
    assert time.monotonic() - started < 5 + LOAD_MARGIN_S
    assert outcome.status == "cancelled"
    assert outcome.outputs == []
    assert multiprocessing.active_children() == []


def test_a_budget_too_short_for_any_model_times_out(data: Path, tmp_path: Path):
    started = time.monotonic()
    outcome = train(
        data,
        spec(CLASSIFICATION_INPUTS, ("label", "binary", "roc_auc"), budget=0.5),
        workdir=tmp_path / "work",
        artifact_key=KEY,
    )
    assert time.monotonic() - started <= 0.5 * 1.05 + 2 + LOAD_MARGIN_S
    assert outcome.status == "timed_out"
    assert outcome.outputs == []
    assert multiprocessing.active_children() == []


_ORPHAN_SCRIPT = """
import sys
from pathlib import Path
from mlmanager.engine.tests.training.conftest import CLASSIFICATION_INPUTS, KEY, spec
from mlmanager.engine.training import train

if __name__ == "__main__":
    train(
        Path(sys.argv[1]),
        spec(CLASSIFICATION_INPUTS, ("label", "binary", "roc_auc")),
        workdir=Path(sys.argv[2]),
        artifact_key=KEY,
    )
"""


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_the_search_ends_when_its_worker_is_killed(data: Path, tmp_path: Path):
    """A worker killed with kill -9 cannot stop its search; the search notices and ends."""
    script = tmp_path / "worker.py"
    script.write_text(_ORPHAN_SCRIPT)
    workdir = tmp_path / "work"
    worker = subprocess.Popen(
        [sys.executable, str(script), str(data), str(workdir)], cwd=Path.cwd()
    )
    try:
        status = workdir / "output-1" / "status.json"
        deadline = time.monotonic() + GENEROUS_BUDGET_S
        while not (status.exists() and "pid" in status.read_text()):
            assert time.monotonic() < deadline and worker.poll() is None
            time.sleep(0.1)
        search_pid = json.loads(status.read_text())["pid"]
        assert _running(search_pid)
    finally:
        worker.kill()
        worker.wait()
    deadline = time.monotonic() + 5 + LOAD_MARGIN_S
    while _running(search_pid):
        assert time.monotonic() < deadline, "the search outlived its worker"
        time.sleep(0.1)


def test_an_error_in_a_callback_still_stops_the_search(data: Path, tmp_path: Path):
    def broken() -> bool:
        raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError, match="database went away"):
        train(
            data,
            spec(CLASSIFICATION_INPUTS, ("label", "binary", "roc_auc")),
            workdir=tmp_path / "work",
            artifact_key=KEY,
            should_cancel=broken,
        )
    assert multiprocessing.active_children() == []
