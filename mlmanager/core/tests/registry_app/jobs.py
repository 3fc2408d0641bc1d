"""What the test app registers: a kind whose subject is a team, its live event's page, a
periodic task and a start-up hook of the default queue. Each records that it ran."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlmanager.accounts.models import Team
from mlmanager.core.registries import SubjectLink
from mlmanager.jobs.runner import JobContext

GREET = "registry_app.greet"
TICK = "registry_app.tick"
STARTUP = "registry_app.startup"
TICK_INTERVAL_S = 60.0

TICKS: list[str] = []
STARTS: list[str] = []


def greet(context: JobContext, *, team_id: int) -> dict[str, Any]:
    """The job's work."""
    context.progress(50, "greeting", force=True)
    return {"greeted": Team.objects.get(pk=team_id).name}


def pages(team_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    return {team_id: {"team_page_id": team_id} for team_id in team_ids}


def team_links(team_ids: Sequence[int]) -> dict[int, tuple[int, list[SubjectLink]]]:
    names = Team.objects.filter(pk__in=team_ids).values_list("pk", "name")
    return {pk: (pk, [SubjectLink("team", f"Team: {name}", f"/teams/{pk}/")]) for pk, name in names}


def tick_interval_s() -> float:
    return TICK_INTERVAL_S


def tick() -> None:
    TICKS.append("tick")


def on_startup() -> None:
    STARTS.append("started")
