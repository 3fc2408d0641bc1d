"""Workers register themselves (what they run on, which queues they take) and heartbeat.

`WorkerPresence` is used by both kinds of worker process: the database queue's (`manage.py
worker`) and Celery's (its worker_ready / worker_shutdown signals, see celery_app). GPUs are
found with NVIDIA's management library when it and a driver are present; a worker without a
GPU never takes the `gpu` queue.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Collection
from typing import Any

import psutil
from django.conf import settings
from django.db import connections
from django.utils import timezone

from mlmanager.core.registries import queue_startup_hooks
from mlmanager.jobs.models import Worker
from mlmanager.jobs.services import worker_name

logger = logging.getLogger(__name__)

GPU_QUEUE = "gpu"


def run_startup_hooks(queues: Collection[str]) -> None:
    """Before a worker takes work: the start-up hooks the apps registered for its queues."""
    for hook in queue_startup_hooks:
        if hook.queue in queues:
            logger.info("worker start-up: %s (queue %s)", hook.name, hook.queue)
            hook.run()


def detect_gpus() -> list[dict[str, Any]]:
    """[{"name", "memory_bytes"}] per NVIDIA GPU; [] without the library, a driver or a GPU."""
    try:
        import pynvml  # nvidia-ml-py, installed with the `gpu` extra
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return []
    try:
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle).total
            gpus.append({"name": str(name), "memory_bytes": int(memory)})
        return gpus
    finally:
        pynvml.nvmlShutdown()


def usable_queues(requested: list[str], gpus: list[dict[str, Any]]) -> list[str]:
    """The queues a worker takes: those requested, less `gpu` on a machine without a GPU (GPU
    work must only reach workers that can run it)."""
    unknown = sorted(set(requested) - set(settings.TASK_QUEUES))
    if unknown:
        known = ", ".join(settings.TASK_QUEUES)
        raise ValueError(f"unknown queue(s) {', '.join(unknown)}; the queues are {known}")
    if GPU_QUEUE in requested and not gpus:
        logger.warning("no GPU found: this worker does not take the %r queue", GPU_QUEUE)
    return [queue for queue in requested if queue != GPU_QUEUE or gpus]


class WorkerPresence:
    """Registers this process as a worker, heartbeats from a thread, marks it stopped."""

    def __init__(self, *, backend: str, queues: list[str], gpus: list[dict[str, Any]]) -> None:
        self.name = worker_name()
        self.backend = backend
        self.queues = queues
        self.gpus = gpus
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="worker-heartbeat", daemon=True)

    def start(self) -> WorkerPresence:
        now = timezone.now()
        Worker.objects.update_or_create(
            name=self.name,
            defaults={
                "hostname": socket.gethostname(),
                "pid": os.getpid(),
                "backend": self.backend,
                "queues": self.queues,
                "cpu_count": os.cpu_count() or 0,
                "memory_bytes": psutil.virtual_memory().total,
                "gpus": self.gpus,
                "started_at": now,
                "heartbeat_at": now,
                "stopped_at": None,
                "current_job": None,
            },
        )
        logger.info("worker %s registered (queues %s)", self.name, ", ".join(self.queues))
        self._thread.start()
        return self

    def _beat(self) -> None:
        try:
            while not self._stop.wait(settings.MLMANAGER_JOB_HEARTBEAT_S):
                try:
                    Worker.objects.filter(name=self.name).update(heartbeat_at=timezone.now())
                except Exception:  # a database restarting: the next beat tries again
                    logger.warning("worker heartbeat failed", exc_info=True)
                    connections.close_all()
        finally:
            connections.close_all()

    def stop(self) -> None:
        self._stop.set()
        Worker.objects.filter(name=self.name).update(stopped_at=timezone.now(), current_job=None)
