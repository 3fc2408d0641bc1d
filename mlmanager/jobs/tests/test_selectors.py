"""jobs.selectors beyond what the pages and the API tests cover: whether a GPU worker lives."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from mlmanager.jobs.models import Worker
from mlmanager.jobs.selectors import gpu_worker_available


@pytest.mark.django_db
def test_a_gpu_worker_is_available_only_while_it_lives(settings) -> None:
    settings.MLMANAGER_JOB_STALE_S = 60
    now = timezone.now()

    def worker(name: str, queues: list[str], **fields) -> Worker:
        return Worker.objects.create(
            name=name,
            hostname="box",
            pid=1,
            backend="database",
            queues=queues,
            started_at=now,
            heartbeat_at=fields.pop("heartbeat_at", now),
            **fields,
        )

    assert not gpu_worker_available()
    worker("cpu:1", ["default", "training"])
    worker("gpu:stale", ["gpu"], heartbeat_at=now - timedelta(seconds=61))
    worker("gpu:stopped", ["training", "gpu"], stopped_at=now)
    assert not gpu_worker_available()
    worker("gpu:live", ["training", "gpu"])
    assert gpu_worker_available()
