"""Reading the audit log: only a team's owners and admins (Action.MANAGE) read its events."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

# The one import of the permission rules in this app.
from mlmanager.accounts.access import team_role
from mlmanager.accounts.models import Membership
from mlmanager.audit.models import AuditEvent
from mlmanager.core.access import ROLE_ACTIONS, Action, parse_id
from mlmanager.core.errors import NotFound, PermissionDenied

if TYPE_CHECKING:
    from mlmanager.accounts.caller import Caller
    from mlmanager.accounts.models import Team

MANAGING_ROLES = sorted(role for role, actions in ROLE_ACTIONS.items() if Action.MANAGE in actions)


def _refused() -> PermissionDenied:
    return PermissionDenied(_("Only the team's owners and admins may read its audit log."))


def _require_manage(*, caller: Caller, team_id: int) -> None:
    """Not a member (or another team's token): not found; a member who may not manage: 403."""
    role = team_role(caller=caller, team_id=team_id)
    if role is None:
        raise NotFound()
    if Action.MANAGE not in ROLE_ACTIONS[role]:
        raise _refused()


def audit_events_for_team(*, caller: Caller, team: Team) -> QuerySet[AuditEvent]:
    """The team's events, newest first (the page, for the caller's current team)."""
    _require_manage(caller=caller, team_id=team.pk)
    return AuditEvent.objects.for_team(team)


def audit_events_for_caller(*, caller: Caller, team_id: Any = None) -> QuerySet[AuditEvent]:
    """The events of `team_id` (an id from the client: checked as the page's team is), or of
    every team the caller manages, newest first (the API). A caller who manages no team is
    refused rather than shown an empty log, which would read as "nothing happened"."""
    if team_id is not None:
        team_id = parse_id(team_id)
        _require_manage(caller=caller, team_id=team_id)
        return AuditEvent.objects.filter(team_id=team_id)
    if caller.user_id is None:
        raise _refused()
    managed = list(
        Membership.objects.filter(user_id=caller.user_id, role__in=MANAGING_ROLES).values_list(
            "team_id", flat=True
        )
    )
    managed = [team_id for team_id in managed if caller.allows_team(team_id)]
    if not managed:
        raise _refused()
    return AuditEvent.objects.filter(team_id__in=managed)
