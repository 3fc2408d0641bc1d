"""Issue 16: training image models through the platform — end to end with the real vision
engine on a few digits and generated shapes (bounded by MLMANAGER_VISION_MAX_EPOCHS, not by
seconds), the version it records, the live curves, cancel keeping the best epochs, and a run
whose model or dataset goes away."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from mlmanager.accounts.caller import Caller
from mlmanager.core import storage
from mlmanager.datasets.models import Dataset
from mlmanager.engine.vision import VisionError, VisionOutcome, VisionProgress
from mlmanager.jobs.models import Job
from mlmanager.machines import services
from mlmanager.machines.models import Machine, ModelVersion, TrainingRun
from mlmanager.machines.tests.conftest import BUDGET_S

MAX_EPOCHS = 2


@pytest.fixture(autouse=True)
def _few_epochs(settings: Any) -> None:
    settings.MLMANAGER_VISION_MAX_EPOCHS = MAX_EPOCHS


@pytest.fixture(autouse=True)
def _light_torch() -> None:
    import torch

    torch.set_num_threads(2)


@pytest.fixture
def browser(owner) -> Client:
    client = Client()
    client.force_login(owner)
    return client


def _model(owner, dataset) -> Machine:
    output = "label" if dataset.profile["images"]["task"] == "classification" else "mask"
    return services.machine_create(
        caller=Caller.for_session(owner),
        dataset=dataset,
        outputs=[output],
        level=1,  # one small network; the epoch cap ends the training well within its minute
    )


def _log(run: TrainingRun) -> str:
    return Job.objects.get(pk=run.job_id).log


# --- end to end, real engine --------------------------------------------------------------------


@pytest.mark.parametrize("task", ["classification", "segmentation"])
def test_an_image_model_trains_end_to_end_and_records_an_active_version(
    owner, make_image_dataset, run_jobs, browser, task
) -> None:
    machine = _model(owner, make_image_dataset(owner, task))
    run = services.training_start(caller=Caller.for_session(owner), machine=machine)
    run_jobs()

    run.refresh_from_db()
    machine.refresh_from_db()
    job = Job.objects.get(pk=run.job_id)
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert not run.is_active
    version = ModelVersion.objects.get(machine=machine)
    assert machine.active_version == version
    assert version.outcome == ModelVersion.Outcome.SUCCEEDED
    assert version.inputs == [{"name": "image", "type": "image"}]
    [output] = version.outputs
    metric = "accuracy" if task == "classification" else "dice"
    assert (output["name"], output["task"], output["metric"]) == (
        "label" if task == "classification" else "mask",
        task,
        metric,
    )
    assert 0.0 <= output["metrics"][metric] <= 1.0
    assert output["metrics"]["per_class"]
    if task == "classification":
        assert output["classes"] == [str(digit) for digit in range(10)]
        assert len(output["metrics"]["confusion_matrix"]["matrix"]) == 10
    else:
        assert output["classes"][0] == "background"
        assert "iou" in output["metrics"]
    assert output["image_size"] == 32
    member_names = [member["name"] for member in output["members"]]
    assert member_names and all(1 <= member["epochs"] <= MAX_EPOCHS for member in output["members"])
    # The artifacts were moved into the version's folder, each file with its signature.
    assert output["artifact_dir"].startswith(f"{version.storage_dir}/")
    assert "model.json" in output["signatures"]
    for name, signature in output["signatures"].items():
        assert storage.exists(f"{output['artifact_dir']}/{name}")
        assert storage.exists(f"{output['artifact_dir']}/{name}.sig")
        assert len(signature) == 64
    assert not storage.exists(f"{machine.storage_dir}/run-{run.pk}.partial/work")
    # The run's curves: every epoch of every member, train and validation.
    assert run.score_curve["kind"] == "epochs"
    assert sorted(run.score_curve["curves"]) == sorted(member_names)
    for points in run.score_curve["curves"].values():
        assert [point["epoch"] for point in points] == list(range(1, len(points) + 1))
        assert {"train_loss", "val_loss", "train_metric", "val_metric"} <= set(points[0])
    assert output["curves"] == run.score_curve["curves"]
    assert run.candidates == sum(len(points) for points in output["curves"].values())
    # One log line per epoch and member.
    for member, points in output["curves"].items():
        for point in points:
            assert f"{member} · epoch {point['epoch']}: loss" in job.log
    assert "Version 1 is now active." in job.log

    html = browser.get(f"/models/{machine.pk}/").content.decode()
    assert 'data-testid="members"' in html
    assert 'data-testid="version-epoch-loss"' in html
    assert 'data-testid="per-class"' in html


def test_the_page_shows_the_curves_while_the_model_trains(
    owner, make_image_dataset, run_jobs, browser, monkeypatch
) -> None:
    """The run panel is refreshed by the page's live updates (every job change); what it shows
    comes from the run's curves, written as the epochs end."""
    from mlmanager.machines.services import vision

    machine = _model(owner, make_image_dataset(owner))
    services.training_start(caller=Caller.for_session(owner), machine=machine)
    real_train = vision.train_vision
    pages: list[str] = []

    def train_and_look(data, spec, *, on_progress, **kwargs):
        def progress(report: VisionProgress) -> None:
            on_progress(report)
            if report.epoch >= 1 and not pages:
                time.sleep(0.55)  # past the run's write interval
                on_progress(report)
                pages.append(browser.get(f"/models/{machine.pk}/").content.decode())

        return real_train(data, spec, on_progress=progress, **kwargs)

    monkeypatch.setattr(vision, "train_vision", train_and_look)
    run_jobs()
    assert pages
    assert 'data-testid="active-run"' in pages[0]
    assert 'data-testid="run-epoch-curves"' in pages[0]
    assert 'data-testid="run-epochs"' in pages[0]
    assert "candidates tried" not in pages[0]


def test_cancel_after_the_first_epoch_keeps_the_best_epochs_as_an_inactive_version(
    owner, make_image_dataset, run_jobs, settings, monkeypatch
) -> None:
    from mlmanager.machines.services import vision

    settings.MLMANAGER_VISION_MAX_EPOCHS = 20  # the cancel, not the cap, ends it
    machine = _model(owner, make_image_dataset(owner))
    run = services.training_start(caller=Caller.for_session(owner), machine=machine)
    real_train = vision.train_vision
    cancelled: list[VisionProgress] = []

    def train_and_cancel(data, spec, *, on_progress, **kwargs):
        def progress(report: VisionProgress) -> None:
            on_progress(report)
            if report.epoch >= 1 and not cancelled:
                cancelled.append(report)
                services.training_cancel(run=run)

        return real_train(data, spec, on_progress=progress, **kwargs)

    monkeypatch.setattr(vision, "train_vision", train_and_cancel)
    run_jobs()

    assert cancelled
    run.refresh_from_db()
    machine.refresh_from_db()
    assert Job.objects.get(pk=run.job_id).status == Job.Status.CANCELLED
    assert not run.is_active
    kept = ModelVersion.objects.get(machine=machine)
    assert kept.outcome == ModelVersion.Outcome.CANCELLED
    assert machine.active_version is None  # a cancelled run never activates
    assert all(member["epochs"] < 20 for member in kept.outputs[0]["members"])
    assert "was kept as version 1; it is not active" in _log(run)


# --- the platform around the engine (scripted engine) ------------------------------------------


class ScriptedVisionEngine:
    """Stands in for engine.vision.train_vision: reports `epochs` epochs of one member, runs
    `during`, then raises `error`, waits for the stop when `wait_for_stop`, or returns an
    outcome with one (unsigned, fake) member file."""

    def __init__(self) -> None:
        self.epochs = 2
        self.during: Any = None
        self.error: VisionError | None = None
        self.wait_for_stop = False

    def train(self, data, spec, *, workdir: Path, artifact_key, on_progress, should_cancel):
        points: list[dict[str, Any]] = []
        for epoch in range(1, self.epochs + 1):
            points.append(
                {
                    "epoch": epoch,
                    "train_loss": 1 / epoch,
                    "val_loss": 1.1 / epoch,
                    "train_metric": 0.5,
                    "val_metric": 0.4 + epoch / 10,
                }
            )
            on_progress(
                VisionProgress(
                    elapsed_s=epoch,
                    budget_s=spec.time_budget_s,
                    member="member-0",
                    epoch=epoch,
                    message="",
                    curves={"member-0": list(points)},
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
        folder = workdir / "model"
        folder.mkdir(parents=True)
        (folder / "model.json").write_text("{}")
        return VisionOutcome(
            status="cancelled" if stopped else "completed",
            task=spec.task,
            classes=["0", "1"],
            image_size=32,
            channels=1,
            members=[
                {
                    "name": "member-0",
                    "architecture": "resnet",
                    "seed": 0,
                    "epochs": self.epochs,
                    "best_epoch": self.epochs if self.epochs else None,
                    "val_metric": points[-1]["val_metric"] if points else None,
                }
            ],
            curves={"member-0": points},
            metrics={
                "accuracy": 0.5,
                "per_class": {},
                "confusion_matrix": {"labels": [], "matrix": []},
            },
            metric="accuracy",
            elapsed_s=1.0,
            artifact_dir=folder,
            signatures={"model.json": "0" * 64},
            reproducibility={"seed": spec.seed},
        )


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> ScriptedVisionEngine:
    scripted = ScriptedVisionEngine()
    monkeypatch.setattr("mlmanager.machines.services.vision.train_vision", scripted.train)
    return scripted


def test_the_scripted_run_passes_the_epoch_cap_and_the_level(
    owner, make_image_dataset, run_jobs, engine, monkeypatch
) -> None:
    seen: list[Any] = []
    train = engine.train

    def spy(data, spec, **kwargs):
        seen.append((Path(data).name, spec))
        return train(data, spec, **kwargs)

    monkeypatch.setattr("mlmanager.machines.services.vision.train_vision", spy)
    machine = services.machine_create(
        caller=Caller.for_session(owner),
        dataset=make_image_dataset(owner),
        outputs=["label"],
        time_budget_s=BUDGET_S,
    )
    services.training_start(caller=Caller.for_session(owner), machine=machine, seed=3)
    run_jobs()
    [(name, spec)] = seen
    assert name == "data.parquet"
    # A budget of 600 s trains level 2's networks (the largest level within it).
    assert (spec.task, spec.level, spec.seed, spec.max_epochs) == ("classification", 2, 3, 2)


def test_cancel_before_any_epoch_keeps_nothing_and_says_so(
    owner, make_image_dataset, run_jobs, engine
) -> None:
    machine = _model(owner, make_image_dataset(owner))
    run = services.training_start(caller=Caller.for_session(owner), machine=machine)
    engine.epochs = 0
    engine.during = lambda: services.training_cancel(run=run)
    engine.error = VisionError("Stopped before any epoch ended.", code="cancelled")
    run_jobs()
    assert Job.objects.get(pk=run.job_id).status == Job.Status.CANCELLED
    assert "Cancelled before a model was found." in _log(run)
    assert not ModelVersion.objects.exists()
    assert not TrainingRun.objects.get(pk=run.pk).is_active


def test_an_engine_refusal_fails_the_run_in_its_words(
    owner, make_image_dataset, run_jobs, engine
) -> None:
    machine = _model(owner, make_image_dataset(owner))
    run = services.training_start(caller=Caller.for_session(owner), machine=machine)
    engine.error = VisionError("Every class needs at least 2 images.", code="too_few_images")
    run_jobs()
    job = Job.objects.get(pk=run.job_id)
    assert job.status == Job.Status.FAILED
    assert job.error == "Every class needs at least 2 images."
    assert not ModelVersion.objects.exists()


@pytest.mark.parametrize("deleted", ["dataset", "model"])
def test_a_run_whose_dataset_or_model_is_deleted_stops_and_keeps_nothing(
    owner, make_image_dataset, run_jobs, engine, deleted
) -> None:
    dataset = make_image_dataset(owner)
    machine = _model(owner, dataset)
    run = services.training_start(caller=Caller.for_session(owner), machine=machine)
    engine.wait_for_stop = True
    if deleted == "dataset":
        engine.during = lambda: Dataset.objects.filter(pk=dataset.pk).delete()
    else:
        engine.during = lambda: Machine.objects.filter(pk=machine.pk).delete()
    run_jobs()
    job = Job.objects.get(pk=run.job_id)
    assert job.status == Job.Status.FAILED
    assert ("dataset was deleted" if deleted == "dataset" else "model was deleted") in job.error
    assert not ModelVersion.objects.exists()


def test_the_scripted_run_logs_each_epoch_once(owner, make_image_dataset, run_jobs, engine) -> None:
    engine.epochs = 3
    machine = _model(owner, make_image_dataset(owner))
    run = services.training_start(caller=Caller.for_session(owner), machine=machine)
    run_jobs()
    log = _log(run)
    for epoch in (1, 2, 3):
        assert log.count(f"member-0 · epoch {epoch}: loss") == 1
    assert (
        "member-0 · epoch 3: loss 0.3333 (validation 0.3667), accuracy 0.5 (validation 0.7)" in log
    )
    run.refresh_from_db()
    # The run ends with the version's holdout score and its best member's architecture.
    assert (run.candidates, run.best_score, run.best_estimator) == (3, 0.5, "resnet")
