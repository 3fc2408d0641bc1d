"""The embedded default's transport: look at a team's jobs in the database, send what changed.

A job's state is (status, progress, message, length of the log), compared with the last look.
`updated_at` cannot be used: the job services change rows with `QuerySet.update()`, which does
not touch it. Each look reads the team's unfinished jobs, the ones it knew unfinished last time
(to see them finish) and any job created since (even one that started and finished between two
looks): all by index, however many finished jobs the team has.
"""

from __future__ import annotations

from mlmanager.jobs.selectors import JobState, team_job_states, team_last_job_id
from mlmanager.live.events import Event, job_events


class TeamJobWatch:
    """What changed in one team's jobs since the last look. Synchronous (the ORM): the
    consumer calls it through `database_sync_to_async`."""

    def __init__(self, team_id: int) -> None:
        self.team_id = team_id
        self.states: dict[int, JobState] = {}
        self.last_id = 0

    def start(self) -> None:
        """Remember the present state: the page on screen was rendered from it."""
        self.last_id = team_last_job_id(team_id=self.team_id)
        self.states = team_job_states(team_id=self.team_id)

    def changes(self) -> list[Event]:
        states = team_job_states(
            team_id=self.team_id, known_ids=list(self.states), after_id=self.last_id
        )
        changed = [pk for pk, state in states.items() if self.states.get(pk) != state]
        # A finished job is reported once, then forgotten (it changes no more).
        self.states = {pk: state for pk, state in states.items() if state.is_active}
        self.last_id = max([self.last_id, *states])
        return [event for _team_id, event in job_events(job_ids=changed)]
