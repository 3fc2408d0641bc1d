from __future__ import annotations

import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import IntegrityError
from django.utils import timezone

from mlmanager.accounts.caller import Caller
from mlmanager.core.access import Action
from mlmanager.core.errors import ApplicationError, Conflict, PermissionDenied
from mlmanager.core.tests.factories import member
from mlmanager.datasets.services import dataset_delete
from mlmanager.engine.artifacts import ArtifactError
from mlmanager.engine.training import LEVEL_BUDGET_S, TrainingError
from mlmanager.jobs.models import Job
from mlmanager.jobs.services import job_claim, jobs_reap
from mlmanager.machines import selectors, services
from mlmanager.machines.files import artifact_key, local_path
from mlmanager.machines.models import Machine, ModelVersion, TrainingRun
from mlmanager.machines.tests.conftest import (
    BUDGET_S,
    LOAD_MARGIN_S,
    MAX_CANDIDATES,
    make_version,
)


def _media_files(under: str) -> list[Path]:
    root = Path(settings.MEDIA_ROOT) / under
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _machine(owner, dataset, **kwargs) -> Machine:
    kwargs.setdefault("outputs", ["churned"])
    kwargs.setdefault("time_budget_s", BUDGET_S)
    return services.machine_create(caller=Caller.for_session(owner), dataset=dataset, **kwargs)


@pytest.mark.django_db
def test_create_infers_tasks_metrics_and_default_inputs(owner, make_dataset) -> None:
    dataset = make_dataset(owner)
    machine = services.machine_create(
        caller=Caller.for_session(owner),
        dataset=dataset,
        outputs=["churned", {"name": "spend", "metric": "mae"}],
    )
    assert machine.outputs == [
        {"name": "churned", "task": "binary", "metric": "roc_auc"},
        {"name": "spend", "task": "regression", "metric": "mae"},
    ]
    # The identifier and the (almost) empty column are left out, and the outputs too.
    assert machine.inputs == ["plan", "monthly_fee", "tenure_months"]
    assert (machine.level, machine.time_budget_s) == (1, LEVEL_BUDGET_S[1])
    assert machine.name == "churned, spend from Churn"
    assert machine.team_id == owner.current_team_id
    assert machine.storage_dir.startswith(f"models/team-{owner.current_team_id}/")
    assert selectors.machine_training_status(machine=machine) == {
        "status": "untrained",
        "run": None,
        "active_version": None,
    }

    plan = {
        row["name"]: row
        for row in selectors.input_plan(
            dataset=dataset, outputs=machine.output_names, inputs=machine.inputs
        )
    }
    assert plan["customer_id"]["reason"] == "an identifier: a different value in nearly every row"
    assert plan["notes"]["reason"] == "the same value in every row"
    assert plan["plan"] == {
        "name": "plan",
        "type": "categorical",
        "role": "input",
        "included": True,
        "reason": "",
    }


@pytest.mark.django_db
def test_create_with_overrides(owner, make_dataset) -> None:
    dataset = make_dataset(owner)
    machine = services.machine_create(
        caller=Caller.for_session(owner),
        dataset=dataset,
        name="  Churn risk ",
        outputs=[{"name": "tenure_months", "task": "regression"}],
        inputs=["plan", "monthly_fee", "plan"],
        time_budget_s=120,
        metric="r2",
    )
    assert machine.name == "Churn risk"
    assert machine.outputs == [{"name": "tenure_months", "task": "regression", "metric": "r2"}]
    assert machine.inputs == ["plan", "monthly_fee"]
    assert (machine.level, machine.time_budget_s) == (None, 120)
    reasons = {
        row["name"]: row["reason"]
        for row in selectors.input_plan(
            dataset=dataset, outputs=machine.output_names, inputs=machine.inputs
        )
    }
    assert reasons["spend"] == "left out by you"
    assert reasons["churned"] == "suggested as an output (last column)"


@pytest.mark.django_db
def test_update_revalidates_and_keeps_what_is_not_sent(owner, make_dataset) -> None:
    machine = _machine(owner, make_dataset(owner), level=2, time_budget_s=None)
    services.machine_update(machine=machine, name="Renamed", metric="accuracy")
    machine.refresh_from_db()
    assert machine.name == "Renamed"
    assert machine.outputs == [{"name": "churned", "task": "binary", "metric": "accuracy"}]
    assert (machine.level, machine.time_budget_s) == (2, LEVEL_BUDGET_S[2])
    services.machine_update(machine=machine, time_budget_s=30)
    assert (machine.level, machine.time_budget_s) == (None, 30)
    with pytest.raises(ApplicationError) as refused:
        services.machine_update(machine=machine, inputs=["customer_id"])
    assert refused.value.code == "no_usable_inputs"
    with pytest.raises(ApplicationError) as empty:
        services.machine_update(machine=machine, name=" ")
    assert empty.value.code == "invalid"


def test_training_creates_an_active_signed_version(owner, make_dataset, run_jobs) -> None:
    """The real engine, end to end: job, run, version, files, signature."""
    machine = _machine(owner, make_dataset(owner))
    run = services.training_start(caller=Caller.for_session(owner), machine=machine, seed=3)
    assert run.is_active
    assert run.job.kind == "machine.train"
    assert run.job.status == Job.Status.QUEUED
    assert run.spec["max_candidates"] == MAX_CANDIDATES

    run_jobs()

    run.refresh_from_db()
    run.job.refresh_from_db()
    machine.refresh_from_db()
    assert run.job.status == Job.Status.SUCCEEDED, run.job.error
    assert not run.is_active
    assert run.candidates >= 1
    assert run.best_score is not None
    version = machine.active_version
    assert version is not None
    assert (version.number, version.outcome, version.run_id) == (1, "succeeded", run.pk)
    assert version.storage_dir == f"{machine.storage_dir}/run-{run.pk}"
    output = version.outputs[0]
    assert output["name"] == "churned"
    assert 0 <= output["metrics"]["roc_auc"] <= 1
    assert output["metrics"]["confusion_matrix"]["labels"] == [False, True]
    assert output["leaderboard"][0]["estimator"]
    assert {item["feature"] for item in output["feature_importance"]} <= set(machine.inputs)
    assert version.reproducibility["seed"] == 3
    # What serving checks answers against: the categories training saw (see predictions.schema).
    assert version.inputs[0] == {
        "name": "plan",
        "type": "categorical",
        "categories": ["basic", "plus", "pro"],
    }
    assert run.job.result == {"machine_id": machine.pk, "run_id": run.pk, "version": 1}
    assert "Version 1 is now active." in run.job.log
    # Files: the published folder only, no partial left; the artifact loads once verified.
    assert not local_path(f"{version.storage_dir}.partial").exists()
    model = selectors.version_model(version=version, output="churned")
    assert model is not None
    artifact = local_path(output["artifact"])
    artifact.write_bytes(artifact.read_bytes() + b"tampered")
    with pytest.raises(Conflict) as refused:
        selectors.version_model(version=version, output="churned")
    assert refused.value.code == ArtifactError().code


@pytest.mark.django_db
def test_second_start_while_active_conflicts(owner, make_dataset, committing) -> None:
    machine = _machine(owner, make_dataset(owner))
    with committing():
        services.training_start(caller=Caller.for_session(owner), machine=machine)
    with pytest.raises(Conflict) as conflict:
        services.training_start(caller=Caller.for_session(owner), machine=machine)
    assert conflict.value.code == "training_active"
    assert conflict.value.status_code == 409
    assert TrainingRun.objects.filter(machine=machine).count() == 1
    assert Job.objects.filter(kind="machine.train").count() == 1


@pytest.mark.django_db
def test_database_allows_one_active_run_per_model(owner, make_dataset) -> None:
    machine = _machine(owner, make_dataset(owner))
    run = services.training_start(caller=Caller.for_session(owner), machine=machine)
    with pytest.raises(IntegrityError):
        TrainingRun.objects.create(
            team_id=machine.team_id,
            machine=machine,
            job=Job.objects.create(team_id=machine.team_id, kind="machine.train"),
            time_budget_s=run.time_budget_s,
        )


def test_cancel_keeps_best_model_without_activating_it(
    owner, make_dataset, run_jobs, fake_engine
) -> None:
    machine = _machine(owner, make_dataset(owner))
    services.training_start(caller=Caller.for_session(owner), machine=machine)
    run_jobs()
    machine.refresh_from_db()
    first = machine.active_version
    assert first is not None and first.number == 1

    run = services.training_start(caller=Caller.for_session(owner), machine=machine)
    fake_engine.wait_for_stop = True
    fake_engine.during = lambda: services.training_cancel(run=run)
    run_jobs()

    run.refresh_from_db()
    run.job.refresh_from_db()
    machine.refresh_from_db()
    assert run.job.status == Job.Status.CANCELLED
    assert not run.is_active
    kept = ModelVersion.objects.get(machine=machine, number=2)
    assert kept.outcome == ModelVersion.Outcome.CANCELLED
    assert kept.run_id == run.pk
    assert machine.active_version_id == first.pk  # a cancelled run never replaces it
    assert "kept as version 2; it is not active" in run.job.log
    # NaN metrics become null and numpy numbers plain numbers.
    assert kept.outputs[0]["metrics"]["log_loss"] is None
    assert kept.outputs[0]["metrics"]["accuracy"] == 0.9

    services.version_activate(
        caller=Caller.for_session(owner), machine=machine, version=kept
    )  # the user may keep it
    machine.refresh_from_db()
    assert machine.active_version_id == kept.pk
    services.version_activate(
        caller=Caller.for_session(owner), machine=machine, version=first
    )  # and roll back
    machine.refresh_from_db()
    assert machine.active_version_id == first.pk


def test_cancel_before_any_model_keeps_nothing(owner, make_dataset, run_jobs, fake_engine) -> None:
    machine = _machine(owner, make_dataset(owner))
    run = services.training_start(caller=Caller.for_session(owner), machine=machine)
    fake_engine.wait_for_stop = True
    fake_engine.outputs_when_cancelled = False
    fake_engine.during = lambda: services.training_cancel(run=run)
    run_jobs()
    run.refresh_from_db()
    assert run.job.status == Job.Status.CANCELLED
    assert not run.is_active
    assert not ModelVersion.objects.exists()
    assert _media_files("models") == []


@pytest.mark.django_db
def test_cancel_queued_run_ends_it_at_once(owner, make_dataset, committing) -> None:
    machine = _machine(owner, make_dataset(owner))
    with committing():
        run = services.training_start(caller=Caller.for_session(owner), machine=machine)
    run = services.training_cancel(run=run)
    assert run.job.status == Job.Status.CANCELLED
    assert not run.is_active
    with pytest.raises(Conflict) as finished:
        services.training_cancel(run=run)
    assert finished.value.code == "training_finished"
    services.training_start(
        caller=Caller.for_session(owner), machine=machine
    )  # free to train again


def test_failed_run_keeps_active_version_and_leaves_no_files(
    owner, make_dataset, run_jobs, fake_engine
) -> None:
    machine = _machine(owner, make_dataset(owner))
    services.training_start(caller=Caller.for_session(owner), machine=machine)
    run_jobs()
    machine.refresh_from_db()
    first = machine.active_version
    files_before = _media_files("models")

    fake_engine.error = TrainingError("The data has a problem.", code="bad_data", details="tail")
    run = services.training_start(caller=Caller.for_session(owner), machine=machine)
    run_jobs()

    run.refresh_from_db()
    run.job.refresh_from_db()
    machine.refresh_from_db()
    assert run.job.status == Job.Status.FAILED
    assert run.job.error == "The data has a problem."
    assert not run.is_active
    assert machine.active_version_id == first.pk
    assert _media_files("models") == files_before
    machine = selectors.access_machine(caller=Caller.for_session(owner), id=machine.pk)
    assert selectors.machine_training_status(machine=machine)["status"] == "ready"


def test_dataset_deleted_while_training_fails_the_run_clearly(
    owner, make_dataset, run_jobs, fake_engine
) -> None:
    dataset = make_dataset(owner)
    machine = _machine(owner, dataset)
    run = services.training_start(caller=Caller.for_session(owner), machine=machine)
    fake_engine.wait_for_stop = True
    fake_engine.during = lambda: dataset_delete(caller=Caller.for_session(owner), dataset=dataset)
    run_jobs()

    run.refresh_from_db()
    run.job.refresh_from_db()
    machine.refresh_from_db()
    assert run.job.status == Job.Status.FAILED
    assert run.job.error.startswith("The dataset was deleted while the model was training")
    assert not run.is_active
    assert machine.dataset_id is None
    assert not ModelVersion.objects.exists()
    assert _media_files("models") == []
    with pytest.raises(Conflict) as missing:
        services.training_start(caller=Caller.for_session(owner), machine=machine)
    assert missing.value.code == "dataset_missing"


def test_dataset_deleted_before_the_run_starts(owner, make_dataset, run_jobs) -> None:
    dataset = make_dataset(owner)
    machine = _machine(owner, dataset)
    run = services.training_start(caller=Caller.for_session(owner), machine=machine)
    dataset_delete(caller=Caller.for_session(owner), dataset=dataset)
    run_jobs()
    run.job.refresh_from_db()
    assert run.job.status == Job.Status.FAILED
    assert run.job.error.startswith("The dataset was deleted while the model was training")


def test_run_of_a_killed_worker_is_requeued_once_then_failed(owner, make_dataset, run_jobs) -> None:
    machine = _machine(owner, make_dataset(owner))
    run = services.training_start(caller=Caller.for_session(owner), machine=machine)
    long_ago = timezone.now() - timedelta(minutes=5)
    assert job_claim(job_id=run.job_id, worker="dead-host:1")
    Job.objects.filter(pk=run.job_id).update(heartbeat_at=long_ago)
    assert selectors.machine_active_run(machine=machine) == run  # still looks alive

    assert jobs_reap()["requeued"] == [run.job_id]  # its worker died: back in the queue, once
    assert job_claim(job_id=run.job_id, worker="dead-host:2")
    Job.objects.filter(pk=run.job_id).update(heartbeat_at=long_ago)
    assert jobs_reap()["failed"] == [run.job_id]  # and again: failed
    run.job.refresh_from_db()
    assert run.job.requeues == 1
    assert run.job.error == "The worker running this job stopped unexpectedly."
    run_jobs()  # the messages the reaper sent tell the run it ended; none runs the work

    machine = selectors.access_machine(caller=Caller.for_session(owner), id=machine.pk)
    assert selectors.machine_active_run(machine=machine) is None
    assert selectors.machine_training_status(machine=machine)["status"] == "failed"
    second = services.training_start(caller=Caller.for_session(owner), machine=machine)
    run.refresh_from_db()
    assert not run.is_active
    assert second.is_active


def test_a_full_disk_fails_the_run_with_a_clear_message_and_leaves_no_files(
    owner, make_dataset, run_jobs
) -> None:
    """A real full disk: the model's folder is a 64 KB tmpfs while the run writes into it."""
    machine = _machine(owner, make_dataset(owner))
    folder = local_path(machine.storage_dir)
    folder.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], check=True)
    try:
        run = services.training_start(caller=Caller.for_session(owner), machine=machine)
        run_jobs()
        left = list(folder.iterdir())
    finally:
        subprocess.run(["umount", str(folder)], check=True)

    run.job.refresh_from_db()
    assert run.job.status == Job.Status.FAILED
    assert "disk" in run.job.error and "full" in run.job.error, run.job.error
    assert left == []  # no partial run folder, no artifact
    machine.refresh_from_db()
    assert machine.active_version is None
    assert not ModelVersion.objects.filter(machine=machine).exists()


def test_delete_cancels_training_and_removes_files(
    owner, make_dataset, run_jobs, fake_engine
) -> None:
    machine = _machine(owner, make_dataset(owner))
    services.training_start(caller=Caller.for_session(owner), machine=machine)
    run_jobs()
    assert _media_files(machine.storage_dir)
    run = services.training_start(caller=Caller.for_session(owner), machine=machine)

    services.machine_delete(caller=Caller.for_session(owner), machine=machine)

    assert not Machine.objects.filter(pk=machine.pk).exists()
    assert not TrainingRun.objects.exists()
    assert Job.objects.get(pk=run.job_id).status == Job.Status.CANCELLED
    assert _media_files("models") == []
    run_jobs()  # the cancelled job is skipped quietly


@pytest.mark.django_db
def test_viewer_reads_but_cannot_change(owner, make_dataset) -> None:
    machine = _machine(owner, make_dataset(owner))
    viewer = member("viewer", team=owner.current_team)
    assert selectors.access_machine(caller=Caller.for_session(viewer), id=machine.pk) == machine
    with pytest.raises(PermissionDenied):
        selectors.access_machine(
            caller=Caller.for_session(viewer), id=machine.pk, action=Action.CHANGE
        )
    version = make_version(machine)
    assert selectors.access_version(machine=machine, number=1) == version


def test_artifact_key_is_derived_not_the_secret(settings) -> None:
    key = artifact_key()
    assert isinstance(key, bytes) and len(key) == 32
    assert settings.SECRET_KEY.encode() not in key
    settings.SECRET_KEY = "another secret key for this test only, long enough"
    assert artifact_key() != key


def test_cancel_with_the_real_engine_is_quick_and_never_activates(
    owner, make_dataset, run_jobs, settings, monkeypatch
) -> None:
    """Whether the engine already had a model to keep depends on timing; either way the job
    ends cancelled within 5 s (plus what a loaded machine adds) and nothing becomes active."""
    from mlmanager.machines.services import training

    settings.MLMANAGER_TRAINING_MAX_CANDIDATES = None  # a search that would use its budget
    machine = _machine(owner, make_dataset(owner))  # generous, so a candidate comes in time
    run = services.training_start(caller=Caller.for_session(owner), machine=machine)
    real_train = training.train
    cancelled_at: list[float] = []

    def train_and_cancel(parquet_path, spec, *, on_progress, **kwargs):
        def progress(report) -> None:
            on_progress(report)
            if report.candidates >= 1 and not cancelled_at:
                cancelled_at.append(time.monotonic())
                services.training_cancel(run=run)

        return real_train(parquet_path, spec, on_progress=progress, **kwargs)

    monkeypatch.setattr(training, "train", train_and_cancel)
    run_jobs()

    assert cancelled_at, "the search reported no candidate"
    assert time.monotonic() - cancelled_at[0] < 5 + LOAD_MARGIN_S
    run.refresh_from_db()
    run.job.refresh_from_db()
    machine.refresh_from_db()
    assert run.job.status == Job.Status.CANCELLED
    assert not run.is_active
    assert machine.active_version is None
    for kept in ModelVersion.objects.filter(machine=machine):
        assert kept.outcome == ModelVersion.Outcome.CANCELLED
        assert selectors.version_model(version=kept, output="churned") is not None


def test_a_training_spec_survives_the_runs_json() -> None:
    import json

    from mlmanager.engine.training import OutputSpec, TrainingSpec
    from mlmanager.machines.services.machines import (
        training_spec_from_json,
        training_spec_to_json,
    )

    spec = TrainingSpec(
        inputs=[("tenure", "numeric"), ("plan", "categorical")],
        outputs=[OutputSpec(name="churned", task="binary", metric="roc_auc")],
        time_budget_s=60.0,
        seed=3,
        max_candidates=8,
    )
    kept = json.loads(json.dumps(training_spec_to_json(spec, dataset_id=5)))
    assert kept["dataset_id"] == 5
    assert training_spec_from_json(kept) == spec
