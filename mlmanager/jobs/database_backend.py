"""The embedded default's task backend: django-tasks-db, plus the queue depth the reaper reads
(jobs.services._lost), as the Celery backend gives it."""

from __future__ import annotations

from django_tasks_db.backend import DatabaseBackend as TasksDatabaseBackend
from django_tasks_db.models import DBTaskResult


class DatabaseBackend(TasksDatabaseBackend):
    def queue_depth(self, queue: str) -> int:
        """Tasks of `queue` waiting for a worker (ready, not yet taken)."""
        return DBTaskResult.objects.ready().filter(queue_name=queue).count()
