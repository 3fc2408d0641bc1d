from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from mlmanager.accounts.access import team_role
from mlmanager.accounts.selectors import teams_for_caller
from mlmanager.core.access import ROLE_ACTIONS, Action


def current_team(request: HttpRequest) -> dict[str, Any]:
    """The team switcher and role-dependent buttons in the layout need these on every page."""
    user = request.user
    team = getattr(request, "team", None)
    if not user.is_authenticated or not team:
        return {"current_team": None, "user_teams": [], "can_change": False, "can_manage": False}
    caller = request.caller  # type: ignore[attr-defined]
    role = team_role(caller=caller, team_id=team.pk) or "viewer"
    return {
        "current_team": team,
        "current_role": role,
        "user_teams": teams_for_caller(caller=caller),
        "can_change": Action.CHANGE in ROLE_ACTIONS[role],
        "can_manage": Action.MANAGE in ROLE_ACTIONS[role],
    }
