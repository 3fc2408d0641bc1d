from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from mlmanager.jobs.models import Worker
from mlmanager.jobs.workers import WorkerPresence, detect_gpus, usable_queues


def test_gpu_work_only_reaches_workers_with_a_gpu() -> None:
    gpu = [{"name": "NVIDIA A10", "memory_bytes": 24 * 2**30}]
    assert usable_queues(["default", "training", "gpu"], []) == ["default", "training"]
    assert usable_queues(["default", "gpu"], gpu) == ["default", "gpu"]
    with pytest.raises(ValueError, match="unknown queue"):
        usable_queues(["default", "fast"], [])


def test_this_machine_reports_its_gpus_or_none() -> None:
    gpus = detect_gpus()
    assert isinstance(gpus, list)
    assert all(gpu["memory_bytes"] > 0 and gpu["name"] for gpu in gpus)


@pytest.mark.django_db(transaction=True)  # the heartbeat thread has its own connection
def test_a_worker_registers_heartbeats_and_stops(settings) -> None:
    import time

    settings.MLMANAGER_JOB_HEARTBEAT_S = 0.05
    presence = WorkerPresence(backend="database", queues=["default"], gpus=[]).start()
    registered = Worker.objects.get(name=presence.name)
    assert registered.cpu_count >= 1 and registered.memory_bytes > 0
    assert registered.queues == ["default"] and registered.stopped_at is None
    time.sleep(0.3)
    presence.stop()
    stopped = Worker.objects.get(name=presence.name)
    assert stopped.heartbeat_at > registered.heartbeat_at
    assert stopped.stopped_at is not None


def test_the_worker_command_refuses_queues_it_cannot_take() -> None:
    with pytest.raises(CommandError, match="unknown queue"):
        call_command("worker", "--queues", "nope")
    with pytest.raises(CommandError, match="needs a GPU"):
        call_command("worker", "--queues", "gpu")


@pytest.mark.django_db
def test_staff_see_workers_with_their_current_job_on_the_admin_page(client, owner) -> None:
    from django.utils import timezone

    from mlmanager.jobs import services

    job = services.job_create(team=owner.current_team, created_by=owner, kind="machine.train")
    now = timezone.now()
    Worker.objects.create(
        name="gpu-box:42",
        hostname="gpu-box",
        pid=42,
        backend="celery",
        queues=["training", "gpu"],
        cpu_count=16,
        memory_bytes=64 * 2**30,
        gpus=[{"name": "NVIDIA A10", "memory_bytes": 24 * 2**30}],
        started_at=now,
        heartbeat_at=now,
        current_job=job,
    )
    owner.is_staff = owner.is_superuser = True
    owner.save()
    client.force_login(owner)
    page = client.get("/admin/jobs/worker/").content.decode()
    assert "gpu-box:42" in page and "training, gpu" in page and "NVIDIA A10 (24 GB)" in page
    assert str(job) in page
