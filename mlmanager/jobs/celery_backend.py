"""A django-tasks backend that sends tasks to Celery workers (MLMANAGER_TASKS=celery).

The thin adapter between the two: `enqueue` publishes one JSON message for
`celery_tasks.run_task` on the task's queue; nothing about results is kept in Celery (the Job
row has them), so `get_result` is not supported.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import timezone
from django_tasks.backends.base import BaseTaskBackend
from django_tasks.base import Task, TaskResult, TaskResultStatus
from django_tasks.utils import get_random_id
from kombu.exceptions import ChannelError

from mlmanager.jobs.celery_app import RUN_TASK, app, configure


class CeleryBackend(BaseTaskBackend):
    supports_defer = True

    def __init__(self, alias: str, params: dict) -> None:
        super().__init__(alias, params)
        configure(settings.CELERY_BROKER_URL, sorted(self.queues))

    def enqueue(self, task: Task, args: Any, kwargs: Any) -> TaskResult:
        self.validate_task(task)
        result_id = get_random_id()
        app.send_task(
            RUN_TASK,
            args=[task.module_path, list(args), dict(kwargs)],
            queue=task.queue_name,
            task_id=result_id,
            eta=task.run_after,
        )
        return TaskResult(
            task=task,
            id=result_id,
            status=TaskResultStatus.READY,
            enqueued_at=timezone.now(),
            started_at=None,
            finished_at=None,
            last_attempted_at=None,
            args=list(args),
            kwargs=dict(kwargs),
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )

    def queue_depth(self, queue: str) -> int:
        """How many messages wait in `queue` on the broker (not counting those a worker has
        taken); the reaper compares it with the jobs still queued (jobs.services._lost)."""
        with app.connection_for_write() as connection:
            try:
                declared = connection.default_channel.queue_declare(queue=queue, passive=True)
            except ChannelError:  # no such queue (a broker restarted without persistence)
                return 0
            return int(declared.message_count)
