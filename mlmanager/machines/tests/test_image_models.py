"""Issue 16 from the models' side, without training: creating models of image datasets (the
API and the page), what a client may and may not ask of one, the kinds never mixing, the queue
an image run goes to, cross-team isolation, and the model page of a trained image model."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from mlmanager.accounts.caller import Caller
from mlmanager.core.tests.factories import api_client_for, member
from mlmanager.datasets.files import local_path
from mlmanager.datasets.models import Dataset
from mlmanager.engine.vision import LEVELS
from mlmanager.jobs.models import Job, Worker
from mlmanager.machines import services
from mlmanager.machines.models import Machine, ModelVersion, TrainingRun

pytestmark = pytest.mark.django_db

LABEL = {"name": "label", "task": "classification", "metric": "accuracy"}
MASK = {"name": "mask", "task": "segmentation", "metric": "dice"}


@pytest.fixture
def browser(owner) -> Client:
    client = Client()
    client.force_login(owner)
    return client


def _image_model(owner, dataset, **arguments: Any) -> Machine:
    output = "label" if dataset.profile["images"]["task"] == "classification" else "mask"
    return services.machine_create(
        caller=Caller.for_session(owner), dataset=dataset, outputs=[output], **arguments
    )


# --- creating ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task", "outputs", "expected"),
    [
        ("classification", ["label"], LABEL),
        ("classification", [LABEL], LABEL),
        ("segmentation", [{"name": "mask"}], MASK),
        ("segmentation", [{"name": "mask", "task": "segmentation"}], MASK),
    ],
)
def test_the_api_creates_an_image_model_with_its_fixed_input_and_output(
    api, owner, make_image_dataset, task, outputs, expected
) -> None:
    dataset = make_image_dataset(owner, task)
    response = api.post(
        "/api/v1/models/", {"dataset": dataset.pk, "outputs": outputs}, format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["inputs"] == ["image"]
    assert body["outputs"] == [expected]
    assert body["level"] == 1 and body["time_budget_s"] == 60
    assert body["left_out_columns"] == []
    machine = Machine.objects.get(pk=body["id"])
    assert machine.is_image_model


def test_an_image_model_takes_a_budget_in_seconds_or_a_level(
    api, owner, make_image_dataset
) -> None:
    dataset = make_image_dataset(owner)
    seconds = api.post(
        "/api/v1/models/",
        {"dataset": dataset.pk, "outputs": ["label"], "time_budget_s": 400, "inputs": ["image"]},
        format="json",
    ).json()
    assert (seconds["level"], seconds["time_budget_s"]) == (None, 400)
    level = api.post(
        "/api/v1/models/", {"dataset": dataset.pk, "outputs": ["label"], "level": 3}, format="json"
    ).json()
    assert (level["level"], level["time_budget_s"]) == (3, 900)


@pytest.mark.parametrize(
    ("task", "payload", "code", "named"),
    [
        ("classification", {"outputs": ["mask"]}, "invalid_image_outputs", "“label”"),
        ("classification", {"outputs": ["label", "label"]}, "invalid_image_outputs", "“label”"),
        ("classification", {"outputs": ["digit"]}, "invalid_image_outputs", "“label”"),
        (
            "classification",
            {"outputs": [{"name": "label", "task": "multiclass"}]},
            "invalid_image_outputs",
            "classification",
        ),
        (
            "classification",
            {"outputs": [{"name": "label", "metric": "log_loss"}]},
            "invalid_image_outputs",
            "accuracy",
        ),
        (
            "classification",
            {"outputs": ["label"], "metric": "dice"},
            "invalid_image_outputs",
            "accuracy",
        ),
        ("segmentation", {"outputs": ["label"]}, "invalid_image_outputs", "“mask”"),
        (
            "segmentation",
            {"outputs": [{"name": "mask", "metric": "accuracy"}]},
            "invalid_image_outputs",
            "dice",
        ),
        (
            "classification",
            {"outputs": ["label"], "inputs": ["pixels"]},
            "invalid_image_inputs",
            "“image”",
        ),
        (
            "classification",
            {"outputs": ["label"], "inputs": ["image", "name"]},
            "invalid_image_inputs",
            "“image”",
        ),
        ("classification", {"outputs": ["label"], "level": 9}, "invalid_level", "1"),
        ("classification", {"outputs": ["label"], "time_budget_s": 3}, "budget_too_small", "3 s"),
        (
            "classification",
            {"outputs": ["label"], "level": 1, "time_budget_s": 60},
            "invalid",
            "not both",
        ),
    ],
)
def test_what_an_image_model_cannot_be_asked_is_a_400_naming_what_is_allowed(
    api, owner, make_image_dataset, task, payload, code, named
) -> None:
    dataset = make_image_dataset(owner, task)
    response = api.post("/api/v1/models/", {"dataset": dataset.pk, **payload}, format="json")
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == code
    assert named in error["message"]
    assert not Machine.objects.exists()


def test_the_allowed_output_is_in_the_error_details(api, owner, make_image_dataset) -> None:
    dataset = make_image_dataset(owner, "segmentation")
    error = api.post(
        "/api/v1/models/", {"dataset": dataset.pk, "outputs": ["label"]}, format="json"
    ).json()["error"]
    assert error["details"] == {"outputs": [MASK]}


def test_a_table_cannot_get_an_image_task(api, owner, make_dataset) -> None:
    dataset = make_dataset(owner)
    response = api.post(
        "/api/v1/models/",
        {"dataset": dataset.pk, "outputs": [{"name": "churned", "task": "classification"}]},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_task"


# --- the kinds never mix -------------------------------------------------------------------------


def test_an_image_model_cannot_be_changed_into_a_table_model_or_back(
    api, owner, make_image_dataset, make_dataset
) -> None:
    image_model = _image_model(owner, make_image_dataset(owner))
    response = api.patch(
        f"/api/v1/models/{image_model.pk}/", {"outputs": ["churned"]}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_image_outputs"
    changed = api.patch(f"/api/v1/models/{image_model.pk}/", {"level": 2}, format="json")
    assert changed.status_code == 200
    assert (changed.json()["level"], changed.json()["outputs"]) == (2, [LABEL])

    table_model = services.machine_create(
        caller=Caller.for_session(owner), dataset=make_dataset(owner), outputs=["churned"]
    )
    response = api.patch(
        f"/api/v1/models/{table_model.pk}/",
        {"outputs": [{"name": "churned", "task": "segmentation"}]},
        format="json",
    )
    assert response.status_code == 400
    assert not Machine.objects.get(pk=table_model.pk).is_image_model


@pytest.mark.parametrize("model_kind", ["images", "table"])
def test_a_model_whose_dataset_became_the_other_kind_is_refused_in_words(
    api, owner, make_image_dataset, make_dataset, model_kind
) -> None:
    if model_kind == "images":
        dataset = make_image_dataset(owner)
        machine = _image_model(owner, dataset)
        Dataset.objects.filter(pk=dataset.pk).update(kind="table")
        words = "learns from images, but its dataset is a table"
    else:
        dataset = make_dataset(owner)
        machine = services.machine_create(
            caller=Caller.for_session(owner), dataset=dataset, outputs=["churned"]
        )
        Dataset.objects.filter(pk=dataset.pk).update(kind="images")
        words = "learns from a table, but its dataset is a set of images"
    for response in (
        api.post(f"/api/v1/models/{machine.pk}/start_training/", {}, format="json"),
        api.patch(f"/api/v1/models/{machine.pk}/", {"level": 2}, format="json"),
    ):
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "dataset_kind"
        assert words in response.json()["error"]["message"]
    assert not TrainingRun.objects.exists()


# --- the queue ----------------------------------------------------------------------------------


def _worker(queues: list[str], *, age_s: float = 0, stopped: bool = False) -> Worker:
    beat = timezone.now() - timedelta(seconds=age_s)
    return Worker.objects.create(
        name=f"box:{Worker.objects.count() + 1}",
        hostname="box",
        pid=Worker.objects.count() + 1,
        backend="database",
        queues=queues,
        started_at=beat,
        heartbeat_at=beat,
        stopped_at=beat if stopped else None,
    )


def _queued(owner, machine: Machine) -> Job:
    run = services.training_start(caller=Caller.for_session(owner), machine=machine)
    return Job.objects.get(pk=run.job_id)


def test_an_image_run_goes_to_the_gpu_queue_when_a_live_gpu_worker_takes_it(
    owner, make_image_dataset, settings
) -> None:
    settings.MLMANAGER_JOB_STALE_S = 60
    _worker(["default", "training", "gpu"])
    job = _queued(owner, _image_model(owner, make_image_dataset(owner, "segmentation")))
    assert job.queue == "gpu"
    assert job.task_path == "mlmanager.machines.tasks.train_machine_on_gpu"
    assert job.kind == "machine.train"


@pytest.mark.parametrize(
    "workers",
    [
        [],
        [{"queues": ["default", "training"]}],
        [{"queues": ["training", "gpu"], "age_s": 600}],  # its heartbeat stopped
        [{"queues": ["training", "gpu"], "stopped": True}],
    ],
    ids=["no worker", "no gpu", "stale gpu worker", "stopped gpu worker"],
)
def test_an_image_run_goes_to_the_training_queue_without_a_live_gpu_worker(
    owner, make_image_dataset, settings, workers
) -> None:
    settings.MLMANAGER_JOB_STALE_S = 60
    for worker in workers:
        _worker(**worker)
    job = _queued(owner, _image_model(owner, make_image_dataset(owner)))
    assert job.queue == "training"
    assert job.task_path == "mlmanager.machines.tasks.train_machine"


def test_a_table_run_stays_on_the_training_queue_with_a_gpu_worker(
    owner, make_dataset, settings
) -> None:
    settings.MLMANAGER_JOB_STALE_S = 60
    _worker(["training", "gpu"])
    machine = services.machine_create(
        caller=Caller.for_session(owner), dataset=make_dataset(owner), outputs=["churned"]
    )
    assert _queued(owner, machine).queue == "training"


def test_an_image_run_keeps_its_request(owner, make_image_dataset, settings) -> None:
    settings.MLMANAGER_VISION_MAX_EPOCHS = 3
    dataset = make_image_dataset(owner)
    machine = _image_model(owner, dataset, time_budget_s=400)
    run = services.training_start(caller=Caller.for_session(owner), machine=machine, seed=7)
    assert run.spec == {
        "kind": "images",
        "inputs": [["image", "image"]],
        "outputs": [LABEL],
        "task": "classification",
        # 400 s: the largest level whose budget fits (level 2, 300 s) chooses the networks.
        "level": 2,
        "time_budget_s": 400.0,
        "seed": 7,
        "max_epochs": 3,
        "dataset_id": dataset.pk,
        # What the run recorded of its data (issue 18): the file's checksum and its rows.
        "dataset": {
            "id": dataset.pk,
            "checksum": hashlib.sha256(local_path(dataset.parquet_path).read_bytes()).hexdigest(),
            "rows": dataset.row_count,
        },
    }
    assert (run.time_budget_s, run.max_candidates, run.seed) == (400, None, 7)


# --- another team's image dataset ----------------------------------------------------------------


def test_another_teams_image_dataset_is_404_to_the_api_and_the_pages(
    owner, make_image_dataset
) -> None:
    other = member("owner")
    dataset = make_image_dataset(other, name="B's digits")
    response = api_client_for(owner).post(
        "/api/v1/models/", {"dataset": dataset.pk, "outputs": ["label"]}, format="json"
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    client = Client()
    client.force_login(owner)
    assert client.get(f"/models/new/?dataset={dataset.pk}").status_code == 404
    assert client.post("/models/new/", {"dataset": dataset.pk, "level": "1"}).status_code == 404
    assert not Machine.objects.exists()


# --- the pages ----------------------------------------------------------------------------------


def test_the_create_page_of_an_image_dataset_shows_what_is_learnt_and_the_levels(
    browser, owner, make_image_dataset
) -> None:
    dataset = make_image_dataset(owner, "segmentation")
    html = browser.get(f"/models/new/?dataset={dataset.pk}").content.decode()
    assert 'data-testid="image-model-plan"' in html
    assert "<strong>mask</strong>" in html and "dice" in html
    assert LEVELS[1].segmentation[0].describe() in html  # e.g. "U-Net (4 levels, …)"
    assert 'data-testid="input-plan"' not in html  # no columns to choose

    created = browser.post(
        "/models/new/", {"dataset": dataset.pk, "name": "Shapes", "level": "2", "then": "create"}
    )
    machine = Machine.objects.get()
    assert created["Location"] == f"/models/{machine.pk}/"
    assert (machine.name, machine.inputs, machine.outputs, machine.level) == (
        "Shapes",
        ["image"],
        [MASK],
        2,
    )
    assert not TrainingRun.objects.exists()


def test_the_create_page_trains_in_one_click_and_says_what_is_wrong(
    browser, owner, make_image_dataset
) -> None:
    dataset = make_image_dataset(owner)
    refused = browser.post(
        "/models/new/",
        {"dataset": dataset.pk, "level": "custom", "time_budget_s": "2", "then": "train"},
    )
    assert refused.status_code == 200
    assert 'data-testid="create-error"' in refused.content.decode()
    assert not Machine.objects.exists()
    browser.post("/models/new/", {"dataset": dataset.pk, "level": "1", "then": "train"})
    run = TrainingRun.objects.get()
    assert run.spec["kind"] == "images" and run.job.status == Job.Status.QUEUED


def image_version(machine: Machine, *, task: str = "classification") -> ModelVersion:
    """A version as an image training records it (versions.vision_version_create)."""
    curves = {
        "member-0": [
            {
                "epoch": epoch,
                "train_loss": 1.2 / epoch,
                "val_loss": 1.3 / epoch,
                "train_metric": 0.5 + epoch / 10,
                "val_metric": 0.45 + epoch / 10,
            }
            for epoch in (1, 2, 3)
        ]
    }
    if task == "classification":
        metrics: dict[str, Any] = {
            "accuracy": 0.9125,
            "per_class": {
                "0": {"precision": 0.95, "recall": 0.9, "f1": 0.924, "support": 20},
                "1": {"precision": 0.875, "recall": 0.925, "f1": 0.899, "support": 20},
            },
            "confusion_matrix": {"labels": ["0", "1"], "matrix": [[18, 2], [1, 19]]},
        }
        classes = ["0", "1"]
    else:
        metrics = {
            "dice": 0.9312,
            "iou": 0.8725,
            "per_class": {
                "circle": {"dice": 0.94, "iou": 0.89},
                "square": {"dice": 0.92, "iou": 0.85},
            },
        }
        classes = ["background", "circle", "square"]
    version = ModelVersion.objects.create(
        team_id=machine.team_id,
        machine=machine,
        number=1,
        outcome=ModelVersion.Outcome.SUCCEEDED,
        storage_dir=f"{machine.storage_dir}/run-v1",
        inputs=[{"name": "image", "type": "image"}],
        outputs=[
            {
                **machine.outputs[0],
                "metrics": metrics,
                "members": [
                    {
                        "name": "member-0",
                        "architecture": "resnet",
                        "seed": 0,
                        "epochs": 3,
                        "best_epoch": 3,
                        "val_metric": 0.75,
                    }
                ],
                "classes": classes,
                "image_size": 32,
                "channels": 1,
                "artifact_dir": f"{machine.storage_dir}/run-v1/model",
                "signatures": {},
                "curves": curves,
            }
        ],
    )
    Machine.objects.filter(pk=machine.pk).update(active_version=version)
    return version


@pytest.mark.parametrize("task", ["classification", "segmentation"])
def test_the_model_page_of_an_image_model_shows_its_networks_metrics_and_curves(
    browser, owner, make_image_dataset, task
) -> None:
    machine = _image_model(owner, make_image_dataset(owner, task))
    image_version(machine, task=task)
    response = browser.get(f"/models/{machine.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="members"' in html and "resnet" in html
    assert 'data-testid="level-plan"' in html
    assert 'data-testid="version-epoch-loss"' in html
    assert 'data-testid="version-epoch-metric-marker"' in html  # the best epoch
    assert 'data-testid="per-class"' in html
    if task == "classification":
        assert 'data-testid="confusion-matrix"' in html
        assert "0.9125" in html
    else:
        assert "IoU" in html and "0.8725" in html
    # Nothing tabular: no importance, leaderboard, threshold, left-out columns.
    for tabular in ("importance", "leaderboard", "threshold", "left-out", "family-scores"):
        assert f'data-testid="{tabular}"' not in html
    assert ">Epochs</th>" in html  # the runs table counts epochs


def test_the_api_shows_an_image_version_as_recorded(api, owner, make_image_dataset) -> None:
    machine = _image_model(owner, make_image_dataset(owner))
    image_version(machine)
    body = api.get(f"/api/v1/models/{machine.pk}/versions/1/").json()
    assert body["inputs"] == [{"name": "image", "type": "image"}]
    output = body["outputs"][0]
    assert {"metrics", "members", "classes", "image_size", "artifact_dir", "signatures"} <= set(
        output
    )
    status = api.get(f"/api/v1/models/{machine.pk}/training_status/").json()
    assert status["active_version"]["outputs"][0]["metrics"]["accuracy"] == 0.9125
