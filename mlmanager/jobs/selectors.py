"""Reads about jobs and workers: team-scoped for pages and the API; the live updates' looks
at a team's jobs; the aggregates the metrics scrape reads."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any, NamedTuple

from django.db.models import Count, DurationField, ExpressionWrapper, F, Max, Q, QuerySet, Sum
from django.db.models.functions import Length, Right

from mlmanager.accounts.access import access_team_object
from mlmanager.accounts.caller import Caller
from mlmanager.core.access import Action
from mlmanager.core.registries import SubjectLink, job_kinds
from mlmanager.jobs.models import Job, Worker, heartbeat_fresh_since
from mlmanager.jobs.workers import GPU_QUEUE

# A job in one of these may still change; a finished one never does.
ACTIVE_STATUSES = (Job.Status.QUEUED, Job.Status.RUNNING)


def jobs_for_caller(*, caller: Caller, team: Any = None) -> QuerySet[Job]:
    """The caller's jobs (of `team` when given)."""
    jobs: QuerySet[Job] = Job.objects.for_caller(caller).select_related("created_by")
    if team is not None:
        jobs = jobs.filter(team=team)
    return jobs


def access_job(*, caller: Caller, id: Any, action: Action = Action.VIEW) -> Job:
    return access_team_object(Job.objects.all(), caller=caller, id=id, action=action)


def attach_subjects(jobs: Iterable[Job]) -> None:
    """Sets `job.subjects` (the links to what each job worked on) from the links its kind
    registered: one query per kind among the jobs. A subject that is gone, or not of the job's
    team (a job row must never lead to another team's data), gets no link."""
    jobs = list(jobs)
    wanted: dict[str, set[int]] = {}
    for job in jobs:
        if job.subject_id is not None and job.kind in job_kinds:
            wanted.setdefault(job.kind, set()).add(job.subject_id)
    found: dict[str, Any] = {}
    for kind, subject_ids in wanted.items():
        links = job_kinds.get(kind).links
        found[kind] = links(sorted(subject_ids)) if links is not None else {}
    for job in jobs:
        team_id, subjects = found.get(job.kind, {}).get(job.subject_id, (None, []))
        subjects_of_team: list[SubjectLink] = list(subjects) if team_id == job.team_id else []
        job.subjects = subjects_of_team  # type: ignore[attr-defined]


# --- live updates (mlmanager.live) -------------------------------------------------------------


def job_event_rows(*, job_ids: Iterable[int], log_tail_chars: int) -> list[dict[str, Any]]:
    """What a live event tells of each job of `job_ids` that still exists, by id, in one query:
    `pk`, `team_id`, `kind`, `status`, `finished`, `progress`, `message`, `subject_id`, and the
    log's length (`log_length`) and last `log_tail_chars` characters (`log_end`). The tail is
    cut in the database: a training log can be long, and it is read on every change."""
    rows = list(
        Job.objects.filter(pk__in=list(job_ids))
        .order_by("pk")
        .annotate(log_length=Length("log"), log_end=Right("log", log_tail_chars))
        .values(
            "pk",
            "team_id",
            "kind",
            "status",
            "progress",
            "message",
            "log_length",
            "log_end",
            "subject_id",
        )
    )
    for row in rows:
        row["finished"] = row["status"] in Job.FINISHED_STATUSES
    return rows


class JobState(NamedTuple):
    """A job as a look at its team's jobs compares it with the last look (why not by
    `updated_at`: mlmanager.live.polling)."""

    status: str
    progress: int
    message: str
    log_length: int

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


def team_last_job_id(*, team_id: int) -> int:
    """The id of the team's newest job, 0 when it has none (a later job has a greater id)."""
    last: int | None = Job.objects.filter(team_id=team_id).aggregate(last=Max("pk"))["last"]
    return last or 0


def team_job_states(
    *, team_id: int, known_ids: Iterable[int] = (), after_id: int | None = None
) -> dict[int, JobState]:
    """Job id -> state of the team's unfinished jobs, of its jobs among `known_ids` and of
    those created after `after_id`, in one query: all by index, however many finished jobs
    the team has."""
    condition = Q(status__in=ACTIVE_STATUSES)
    known = list(known_ids)
    if known:
        condition |= Q(pk__in=known)
    if after_id is not None:
        condition |= Q(pk__gt=after_id)
    rows = (
        Job.objects.filter(condition, team_id=team_id)
        .order_by()
        .annotate(log_length=Length("log"))
        .values_list("pk", "status", "progress", "message", "log_length")
    )
    return {
        pk: JobState(status, progress, message, log_length or 0)
        for pk, status, progress, message, log_length in rows
    }


# --- metrics (mlmanager.ops.metrics): aggregates, a few queries whatever the table size -------


def job_counts_by_kind_and_status() -> dict[tuple[str, str], int]:
    """(kind, status) -> number of jobs, in one query: every registered kind with every status,
    zero included, then, sorted, any pair only the rows know (written by an older version)."""
    counts = {
        (row["kind"], row["status"]): row["count"]
        for row in Job.objects.order_by().values("kind", "status").annotate(count=Count("pk"))
    }
    known = [(kind, status) for kind in job_kinds.names() for status in Job.Status.values]
    return {pair: counts.get(pair, 0) for pair in known + sorted(set(counts) - set(known))}


def queued_job_counts() -> dict[str, int]:
    """Queue name -> number of jobs waiting in it ('' for a job queued without a queue name)."""
    return {
        row["queue"]: row["count"]
        for row in Job.objects.filter(status=Job.Status.QUEUED)
        .order_by()
        .values("queue")
        .annotate(count=Count("pk"))
    }


@dataclasses.dataclass(frozen=True)
class JobDurations:
    """How long the finished jobs of one kind and status ran."""

    kind: str
    status: str
    count: int
    total_seconds: float
    # For each bound asked for, in its order: how many ran at most that many seconds.
    counts_within: list[int]


def finished_job_durations(*, bounds_s: Sequence[float]) -> list[JobDurations]:
    """finished_at − started_at of the finished jobs that ran, by kind and status (sorted), in
    one query: the bounds are counted in SQL (one conditional COUNT each) rather than by loading
    rows."""
    buckets = {
        f"le_{index}": Count("pk", filter=Q(duration__lte=timedelta(seconds=bound)))
        for index, bound in enumerate(bounds_s)
    }
    rows = (
        Job.objects.filter(
            status__in=Job.FINISHED_STATUSES, started_at__isnull=False, finished_at__isnull=False
        )
        .order_by()
        .alias(
            duration=ExpressionWrapper(
                F("finished_at") - F("started_at"), output_field=DurationField()
            )
        )
        .values("kind", "status")
        .annotate(total=Count("pk"), seconds=Sum("duration"), **buckets)
    )
    return [
        JobDurations(
            kind=row["kind"],
            status=row["status"],
            count=row["total"],
            total_seconds=row["seconds"].total_seconds() if row["seconds"] is not None else 0.0,
            counts_within=[row[f"le_{index}"] for index in range(len(bounds_s))],
        )
        for row in sorted(rows, key=lambda row: (row["kind"], row["status"]))
    ]


def alive_worker_count() -> int:
    """Workers that have not stopped and heartbeat within MLMANAGER_JOB_STALE_S."""
    return Worker.objects.filter(
        stopped_at__isnull=True, heartbeat_at__gte=heartbeat_fresh_since()
    ).count()


def gpu_worker_available() -> bool:
    """Whether a live worker takes the `gpu` queue: one that has not stopped, heartbeat within
    MLMANAGER_JOB_STALE_S and lists `gpu` among its queues (jobs.workers only lets a worker
    with a GPU take it). Work that can use a GPU goes there only then: a job sent to a queue
    nobody takes would wait forever.

    The queues are compared here rather than in SQL: JSON `contains` is not available on
    SQLite, and live workers are a handful of rows.
    """
    live_queues = Worker.objects.filter(
        stopped_at__isnull=True, heartbeat_at__gte=heartbeat_fresh_since()
    ).values_list("queues", flat=True)
    return any(GPU_QUEUE in (queues or []) for queues in live_queues)
