from __future__ import annotations

from functools import partial

from django_tasks import task

from mlmanager.core.tests.registry_app.jobs import greet
from mlmanager.jobs.runner import run_job


@task()
def greet_team(job_id: int, team_id: int) -> None:
    run_job(job_id, partial(greet, team_id=team_id))
