from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from django.db.models import F, QuerySet
from django.db.models.functions import Coalesce

from mlmanager.core.access import Action, access_team_object
from mlmanager.datasets.models import Dataset
from mlmanager.jobs.models import Job


@dataclasses.dataclass(frozen=True)
class JobSubject:
    """Something a job worked on, for a link on the jobs pages."""

    kind: str  # "dataset" | "model" | "batch"
    id: int
    name: str
    machine_id: int | None = None  # a batch is listed on its model's batches page


def _with_subject_refs(jobs: QuerySet[Job]) -> QuerySet[Job]:
    """The model and batch behind a training or batch job, in the same query (through their
    one-to-one links to the job)."""
    return jobs.annotate(
        subject_machine_id=Coalesce(F("training_run__machine_id"), F("batch__machine_id")),
        subject_machine_name=Coalesce(F("training_run__machine__name"), F("batch__machine__name")),
        subject_batch_id=F("batch__id"),
        subject_batch_dataset_id=F("batch__dataset_id"),
    )


def jobs_for_user(*, user: Any, team: Any = None, subjects: bool = False) -> QuerySet[Job]:
    """The caller's jobs (of `team` when given); with `subjects`, ready for attach_subjects."""
    jobs: QuerySet[Job] = Job.objects.for_user(user).select_related("created_by")
    if subjects:
        jobs = _with_subject_refs(jobs)
    if team is not None:
        jobs = jobs.filter(team=team)
    return jobs


def access_job(*, user: Any, id: Any, action: Action = Action.VIEW, subjects: bool = False) -> Job:
    jobs = _with_subject_refs(Job.objects.all()) if subjects else Job.objects.all()
    return access_team_object(jobs, user=user, id=id, action=action)


def _dataset_id(job: Job) -> int | None:
    """The dataset a processing job read (its task's argument) or a batch predicted."""
    raw = (job.task_kwargs or {}).get("dataset_id") or getattr(
        job, "subject_batch_dataset_id", None
    )
    return raw if isinstance(raw, int) else None


def attach_subjects(jobs: Iterable[Job]) -> None:
    """Sets `job.subjects` (a list of JobSubject) on jobs loaded with `subjects=True`: one
    query for the names of their datasets that still exist, in their teams."""
    jobs = list(jobs)
    wanted = {(job.team_id, dataset_id) for job in jobs if (dataset_id := _dataset_id(job))}
    names = (
        {
            (team_id, pk): name
            for pk, team_id, name in Dataset.objects.filter(
                pk__in={dataset_id for _team, dataset_id in wanted},
                team_id__in={team_id for team_id, _dataset in wanted},
            ).values_list("pk", "team_id", "name")
        }
        if wanted
        else {}
    )
    for job in jobs:
        subjects = []
        dataset_id = _dataset_id(job)
        if dataset_id is not None and (job.team_id, dataset_id) in names:
            subjects.append(JobSubject("dataset", dataset_id, names[(job.team_id, dataset_id)]))
        machine_id = getattr(job, "subject_machine_id", None)
        if machine_id is not None:
            subjects.append(JobSubject("model", machine_id, job.subject_machine_name))  # type: ignore[attr-defined]
        batch_id = getattr(job, "subject_batch_id", None)
        if batch_id is not None:
            subjects.append(JobSubject("batch", batch_id, f"#{batch_id}", machine_id=machine_id))
        job.subjects = subjects  # type: ignore[attr-defined]
