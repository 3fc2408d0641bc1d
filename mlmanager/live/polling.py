"""The embedded default's transport: look at a team's jobs in the database, send what changed.

A job's state is (status, progress, message, length of the log), compared with the last look.
`updated_at` cannot be used: the job services change rows with `QuerySet.update()`, which does
not touch it. Each look reads the team's unfinished jobs, the ones it knew unfinished last time
(to see them finish) and any job created since (even one that started and finished between two
looks): all by index, however many finished jobs the team has.
"""

from __future__ import annotations

from django.db.models import Max, Q
from django.db.models.functions import Length

from mlmanager.jobs.models import Job
from mlmanager.live.events import Event, job_events

ACTIVE_STATUSES = (Job.Status.QUEUED, Job.Status.RUNNING)

State = tuple[str, int, str, int]


class TeamJobWatch:
    """What changed in one team's jobs since the last look. Synchronous (the ORM): the
    consumer calls it through `database_sync_to_async`."""

    def __init__(self, team_id: int) -> None:
        self.team_id = team_id
        self.states: dict[int, State] = {}
        self.last_id = 0

    def start(self) -> None:
        """Remember the present state: the page on screen was rendered from it."""
        jobs = Job.objects.filter(team_id=self.team_id)
        self.last_id = jobs.aggregate(last=Max("pk"))["last"] or 0
        self.states = self._states(Q(status__in=ACTIVE_STATUSES))

    def changes(self) -> list[Event]:
        states = self._states(
            Q(status__in=ACTIVE_STATUSES) | Q(pk__in=list(self.states)) | Q(pk__gt=self.last_id)
        )
        changed = [pk for pk, state in states.items() if self.states.get(pk) != state]
        # A finished job is reported once, then forgotten (it changes no more).
        self.states = {pk: state for pk, state in states.items() if state[0] in ACTIVE_STATUSES}
        self.last_id = max([self.last_id, *states])
        return [event for _team_id, event in job_events(job_ids=changed)]

    def _states(self, condition: Q) -> dict[int, State]:
        rows = (
            Job.objects.filter(condition, team_id=self.team_id)
            .order_by()
            .annotate(log_length=Length("log"))
            .values_list("pk", "status", "progress", "message", "log_length")
        )
        return {
            pk: (status, progress, message, log_length or 0)
            for pk, status, progress, message, log_length in rows
        }
