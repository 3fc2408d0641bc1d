"""What a page hears about a job, and how it travels in scale-out mode (a channel layer).

An event is a small JSON object built from the Job row, plus fields that say which page it
concerns, found from the job's subject by the resolver its app registered for the job's kind
(core.registries.live_event_resolvers): e.g. `dataset_id`, `machine_id`, `batch_id`. Every event
carries every registered field (null where its resolver did not set it), so pages see one shape.
This module names no app.

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

from mlmanager.core.registries import live_event_resolvers
from mlmanager.jobs.selectors import job_event_rows

logger = logging.getLogger(__name__)

LOG_TAIL_LINES = 5
# Enough for LOG_TAIL_LINES lines of a training log; cut in the database (job_event_rows).
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
    """(team id, event) for each job that still exists: one query for the jobs, then one call
    of each resolver whose kind is among them."""
    ids = list(job_ids)
    if not ids:
        return []
    rows = job_event_rows(job_ids=ids, log_tail_chars=LOG_TAIL_CHARS)
    pages = _pages(rows)
    blank = dict.fromkeys(field for resolver in live_event_resolvers for field in resolver.fields)
    return [(row["team_id"], {**_event(row), **blank, **pages.get(row["pk"], {})}) for row in rows]


def _pages(rows: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Job id -> the page fields its kind's resolver gave for its subject."""
    subjects: dict[str, dict[int, list[int]]] = {}  # kind -> subject id -> job ids
    for row in rows:
        if row["subject_id"] is not None and row["kind"] in live_event_resolvers:
            subjects.setdefault(row["kind"], {}).setdefault(row["subject_id"], []).append(row["pk"])
    pages: dict[int, dict[str, Any]] = {}
    for kind, jobs_of_subject in subjects.items():
        resolver = live_event_resolvers.get(kind)
        for subject_id, fields in resolver.resolve(list(jobs_of_subject)).items():
            for job_id in jobs_of_subject.get(subject_id, []):
                pages[job_id] = {name: fields.get(name) for name in resolver.fields}
    return pages


def _event(row: dict[str, Any]) -> Event:
    return {
        "type": "job",
        "id": row["pk"],
        "kind": row["kind"],
        "status": row["status"],
        "progress": row["progress"],
        "message": row["message"],
        "log_tail": _log_tail(row["log_end"] or "", cut=(row["log_length"] or 0) > LOG_TAIL_CHARS),
        "finished": row["finished"],
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
