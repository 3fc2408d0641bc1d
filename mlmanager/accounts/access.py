"""Permission-checked fetches: the only way a client-supplied id becomes an object.

`access_team_object` answers "not found" for other teams' ids (so ids reveal nothing) and
"permission denied" when the caller's role in the object's team does not allow the action.
Each app wraps it as `access_<thing>(*, caller, id, action)`. The rules of a credential (a team
token reaches its one team) come from the `Caller`; the bearer-token predict path states the
same rules in SQL (`mlmanager.accounts.tokens.token_grant`).
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.db import models
from django.db.models import F

from mlmanager.accounts.caller import Caller
from mlmanager.accounts.models import Membership
from mlmanager.core.access import Action, parse_id, require_role_action
from mlmanager.core.errors import NotFound

_ModelT = TypeVar("_ModelT", bound=models.Model)


def team_role(*, caller: Caller, team_id: int) -> str | None:
    """The caller's role in the team, or None when they are not a member (or their credential
    is limited to another team)."""
    if caller.user_id is None or not caller.allows_team(team_id):
        return None
    return (
        Membership.objects.filter(team_id=team_id, user_id=caller.user_id)
        .values_list("role", flat=True)
        .first()
    )


def require_team_action(*, caller: Caller, team_id: int, action: Action) -> str:
    return require_role_action(team_role(caller=caller, team_id=team_id), action)


def access_team_object(
    queryset: models.QuerySet[_ModelT], *, caller: Caller, id: Any, action: Action = Action.VIEW
) -> _ModelT:
    # One query: for_caller joins the caller's membership, and the role is read from that join.
    # No ORDER BY (as .first() or the model's ordering would add) for a primary-key lookup.
    found = list(
        queryset.for_caller(caller)  # type: ignore[attr-defined]
        .filter(pk=parse_id(id))
        .annotate(caller_role=F("team__memberships__role"))
        .order_by()[:1]
    )
    if not found:
        raise NotFound()
    require_role_action(found[0].caller_role, action)
    return found[0]
