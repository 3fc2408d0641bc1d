"""What a page hears about a job, and how it travels in scale-out mode (a channel layer).

An event is a small JSON object built from the Job row, plus the object the job works for so a
page can tell whether it concerns it: `dataset_id` (processing a dataset), `machine_id` (the
model a training or a batch prediction belongs to), `batch_id` (a batch prediction).

Scale-out: `on_job_changed` receives `job_changed` in whatever process changed the job (usually
a worker) and, once the change is committed, sends the event to the team's group. Without a
channel layer both receivers do nothing: the live server polls the database (`polling`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.db.models.functions import Length, Right

from mlmanager.datasets.models import Dataset
from mlmanager.jobs.models import Job

logger = logging.getLogger(__name__)

LOG_TAIL_LINES = 5
# The tail is cut in the database: a training log can be long, and it is read on every change.
LOG_TAIL_CHARS = 2000

Event = dict[str, Any]

# After a publication fails, this process stops trying for a while: a worker must not stall
# on every progress report while Redis is unreachable (pages lose their socket meanwhile and
# fall back to their slow poll).
PUBLISH_PAUSE_S = 30.0
_publishing = {"paused_until": 0.0}


def team_group(team_id: int) -> str:
    """The group every socket of a team joins: the events of that team's jobs."""
    return f"live.team.{team_id}"


def user_group(user_id: int) -> str:
    """The group of one user's sockets: told when a membership of theirs is removed."""
    return f"live.user.{user_id}"


def job_events(*, job_ids: Iterable[int]) -> list[tuple[int, Event]]:
    """(team id, event) for each job that still exists, in one query."""
    ids = list(job_ids)
    if not ids:
        return []
    dataset = Dataset.objects.filter(job=OuterRef("pk")).order_by().values("pk")[:1]
    rows = (
        Job.objects.filter(pk__in=ids)
        .order_by("pk")
        .annotate(
            log_length=Length("log"),
            log_end=Right("log", LOG_TAIL_CHARS),
            dataset_ref=Subquery(dataset),
        )
        .values(
            "pk",
            "team_id",
            "kind",
            "status",
            "progress",
            "message",
            "log_length",
            "log_end",
            "dataset_ref",
            "training_run__machine_id",
            "batch__id",
            "batch__machine_id",
        )
    )
    return [(row["team_id"], _event(row)) for row in rows]


def _event(row: dict[str, Any]) -> Event:
    return {
        "type": "job",
        "id": row["pk"],
        "kind": row["kind"],
        "status": row["status"],
        "progress": row["progress"],
        "message": row["message"],
        "log_tail": _log_tail(row["log_end"] or "", cut=(row["log_length"] or 0) > LOG_TAIL_CHARS),
        "finished": row["status"] in Job.FINISHED_STATUSES,
        "dataset_id": row["dataset_ref"],
        "machine_id": row["training_run__machine_id"] or row["batch__machine_id"],
        "batch_id": row["batch__id"],
    }


def _log_tail(end: str, *, cut: bool) -> list[str]:
    lines = end.splitlines()
    if cut and lines:
        lines = lines[1:]  # the first line of a cut tail is only the end of a line
    return lines[-LOG_TAIL_LINES:]


# --- scale-out: push through the channel layer -------------------------------------------------


def on_job_changed(sender: Any, *, job_id: int, **kwargs: Any) -> None:
    """Publish after commit: the page re-fetches over HTTP, on another connection, and must
    see the change the event announces."""
    if get_channel_layer() is None:
        return  # the embedded default: the live server polls the database instead
    transaction.on_commit(lambda: publish_job_changed(job_id=job_id))


def publish_job_changed(*, job_id: int) -> None:
    layer = get_channel_layer()
    if layer is None or time.monotonic() < _publishing["paused_until"]:
        return
    try:
        for team_id, event in job_events(job_ids=[job_id]):
            async_to_sync(layer.group_send)(
                team_group(team_id), {"type": "job.event", "team_id": team_id, "event": event}
            )
    except Exception:
        # Live updates are a convenience: an unreachable Redis must never fail the job.
        _publishing["paused_until"] = time.monotonic() + PUBLISH_PAUSE_S
        logger.warning(
            "live: the change of job %s could not be published; pausing for %s s",
            job_id,
            PUBLISH_PAUSE_S,
            exc_info=True,
        )


def on_membership_removed(sender: Any, *, user_id: int, team_id: int, **kwargs: Any) -> None:
    layer = get_channel_layer()
    if layer is None:
        return  # the embedded default: each socket re-checks its membership every second
    try:
        async_to_sync(layer.group_send)(
            user_group(user_id), {"type": "membership.removed", "team_id": team_id}
        )
    except Exception:
        # The sockets' own periodic membership check closes them a little later.
        logger.warning(
            "live: the removal of user %s from team %s could not be published",
            user_id,
            team_id,
            exc_info=True,
        )
