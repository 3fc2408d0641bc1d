"""The Celery application behind MLMANAGER_TASKS=celery.

Celery only carries messages here: one generic Celery task, `mlmanager.run_task`, runs any of
the project's django-tasks `Task`s by its module path, so task code is the same on both
backends (`celery_backend.CeleryBackend` sends the messages). The Job row stays the truth: a
message delivered twice runs the work at most once (jobs.services.job_claim), and a message the
broker lost is sent again by the reaper (jobs.services.jobs_reap).

Messages are JSON only (no pickle: nothing from the broker is ever unpickled). Work is
acknowledged after it ran (`acks_late`) and each worker thread takes one message at a time, so
a worker killed mid-job leaves its message to be delivered again rather than lost.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import worker_ready, worker_shutdown
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("mlmanager")
RUN_TASK = "mlmanager.run_task"


def configure(broker_url: str, queues: list[str]) -> None:
    if app.conf.broker_url and app.conf.broker_url != broker_url:
        # Another broker than before (tests switch between Redis and RabbitMQ): drop the
        # connection and producer pools made for the old one, as Celery does after a fork.
        app._after_fork()
    app.conf.update(
        broker_url=broker_url,
        broker_connection_retry_on_startup=True,
        # Publishing retries a broker that is restarting before the enqueue gives up.
        task_publish_retry=True,
        task_publish_retry_policy={
            "max_retries": 5,
            "interval_start": 0.2,
            "interval_step": 0.5,
            "interval_max": 3,
        },
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,  # results live in the Job row
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_queues=[Queue(name) for name in queues],
        task_default_queue="default",
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        # Redis: a message taken by a worker that died comes back after this long; it must be
        # longer than the longest job, or a running job's message would be delivered again
        # (harmless — the claim refuses it — but wasteful).
        broker_transport_options={"visibility_timeout": 6 * 60 * 60},
    )


def _configure_from_settings() -> None:
    from django.conf import settings

    configure(settings.CELERY_BROKER_URL, settings.TASK_QUEUES)


_presence = None


def _worker_ready(sender: Any, **kwargs: Any) -> None:
    """Run the start-up hooks of the queues it takes, then register the worker (jobs.workers)
    once it consumes."""
    global _presence
    from mlmanager.jobs.workers import WorkerPresence, detect_gpus, run_startup_hooks

    queues = sorted(sender.app.amqp.queues.consume_from)
    run_startup_hooks(queues)
    _presence = WorkerPresence(backend="celery", queues=queues, gpus=detect_gpus()).start()


def _worker_shutdown(**kwargs: Any) -> None:
    if _presence is not None:
        _presence.stop()


# The worker process (`manage.py worker` with MLMANAGER_TASKS=celery runs `celery --app
# mlmanager.jobs.celery_app worker`) sets Django up first.
if os.environ.get("MLMANAGER_CELERY_WORKER") == "1":
    import django

    django.setup()
    _configure_from_settings()
    import mlmanager.jobs.celery_tasks  # noqa: F401 - registers mlmanager.run_task

    worker_ready.connect(_worker_ready)
    worker_shutdown.connect(_worker_shutdown)
