"""The pure parts of permission checks: actions, what each role may do, and client ids.

The checks themselves need memberships and the typed `Caller`, so they live in
`mlmanager.accounts.access` (core imports no app); each app wraps `access_team_object` as
`access_<thing>(*, caller, id, action)`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from mlmanager.core.errors import NotFound, PermissionDenied


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
