"""Team-scoped, permission-checked fetches: the only way a client-supplied id becomes an object.

`access_team_object` answers "not found" for other teams' ids (so ids reveal nothing) and
"permission denied" when the caller's role in the object's team does not allow the action.
Each app wraps it as `access_<thing>(*, user, id, action)`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, TypeVar

from django.db import models
from django.db.models import F

from mlmanager.core.errors import NotFound, PermissionDenied

_ModelT = TypeVar("_ModelT", bound=models.Model)


class Action(StrEnum):
    VIEW = "view"  # read anything in the team
    CHANGE = "change"  # create and change data, models, jobs
    MANAGE = "manage"  # members, invitations, team settings


ROLE_ACTIONS: dict[str, frozenset[Action]] = {
    "viewer": frozenset({Action.VIEW}),
    "editor": frozenset({Action.VIEW, Action.CHANGE}),
    "admin": frozenset({Action.VIEW, Action.CHANGE, Action.MANAGE}),
    "owner": frozenset({Action.VIEW, Action.CHANGE, Action.MANAGE}),
}


def team_role(*, user: Any, team_id: int) -> str | None:
    """The user's role in the team, or None when they are not a member (or their token is
    restricted to another team)."""
    if not getattr(user, "is_authenticated", False):
        return None
    restricted = getattr(user, "restricted_team_id", None)
    if restricted is not None and restricted != team_id:
        return None
    from mlmanager.accounts.models import Membership

    return (
        Membership.objects.filter(team_id=team_id, user=user).values_list("role", flat=True).first()
    )


def require_team_action(*, user: Any, team_id: int, action: Action) -> str:
    return require_role_action(team_role(user=user, team_id=team_id), action)


def require_role_action(role: str | None, action: Action) -> str:
    """The role when it allows the action; no role (not a member) is "not found"."""
    if role is None:
        raise NotFound()
    if action not in ROLE_ACTIONS[role]:
        raise PermissionDenied()
    return role


def parse_id(raw: Any) -> int:
    """Ids from URLs and bodies: anything that is not a positive integer is simply not found."""
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise NotFound() from None
    if value <= 0:
        raise NotFound()
    return value


def access_team_object(
    queryset: models.QuerySet[_ModelT], *, user: Any, id: Any, action: Action = Action.VIEW
) -> _ModelT:
    # One query: for_user joins the caller's membership, and the role is read from that join.
    # No ORDER BY (as .first() or the model's ordering would add) for a primary-key lookup.
    found = list(
        queryset.for_user(user)  # type: ignore[attr-defined]
        .filter(pk=parse_id(id))
        .annotate(caller_role=F("team__memberships__role"))
        .order_by()[:1]
    )
    if not found:
        raise NotFound()
    require_role_action(found[0].caller_role, action)
    return found[0]
