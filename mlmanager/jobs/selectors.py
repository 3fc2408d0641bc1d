from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from mlmanager.core.access import Action, access_team_object
from mlmanager.jobs.models import Job


def jobs_for_user(*, user: Any, team: Any = None) -> QuerySet[Job]:
    jobs = Job.objects.for_user(user).select_related("created_by")
    if team is not None:
        jobs = jobs.filter(team=team)
    return jobs


def access_job(*, user: Any, id: Any, action: Action = Action.VIEW) -> Job:
    return access_team_object(Job.objects.all(), user=user, id=id, action=action)
