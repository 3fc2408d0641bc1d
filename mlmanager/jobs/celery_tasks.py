"""The one Celery task: run a django-tasks `Task` of this project by its module path."""

from __future__ import annotations

import logging
import re
from typing import Any

from django.utils.module_loading import import_string
from django_tasks.base import Task

from mlmanager.jobs.celery_app import RUN_TASK, app

logger = logging.getLogger(__name__)

TASK_PATH = re.compile(r"mlmanager(\.[a-z_]+)*\.([a-z_]+_)?tasks\.[a-z_]+")


@app.task(name=RUN_TASK)
def run_task(task_path: str, args: list[Any], kwargs: dict[str, Any]) -> None:
    # Only functions of this project's task modules (mlmanager.<app>.tasks, or a module named
    # ..._tasks): a message naming anything else is refused before anything is imported.
    if not TASK_PATH.fullmatch(task_path):
        raise ValueError(f"refusing to run {task_path!r}: not an MLManager task")
    task = import_string(task_path)
    if not isinstance(task, Task):
        raise ValueError(f"refusing to run {task_path!r}: not a task")
    task.call(*args, **kwargs)
